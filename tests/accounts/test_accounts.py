"""Accounts: sign-up by emailed code (in the patient's language), limits on guessing, no account
enumeration, MFA required for staff and editors, and every login through allauth."""

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import validate_totp_code
from django.contrib.auth.models import Group
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from bookings.demo.mfa import DEMO_TOTP_SECRET, activate_demo_totp, current_code, totp_secret
from bookings.models import ClinicMembership

pytestmark = pytest.mark.django_db

CYRILLIC = re.compile("[А-Яа-яЁё]")
PASSWORD = "a-long-password-9"


def make_user(django_user_model, email, **extra):
    user = django_user_model.objects.create_user(email, email, PASSWORD, **extra)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.fixture(autouse=True)
def _english():
    """Requests activate their URL's language in this thread; start each test from English again."""
    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture
def coordinator(django_user_model):
    from catalog.models import ClinicPage

    user = make_user(django_user_model, "coord.test@clinic.example")
    ClinicMembership.objects.create(user=user, clinic=ClinicPage.objects.first())
    return user


@pytest.fixture
def editor(django_user_model):
    user = make_user(django_user_model, "editor.test@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name="Editors"))  # Wagtail's group with admin access
    assert user.has_perm("wagtailadmin.access_admin")
    return user


# --- layout ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, lang", [
    ("/en/accounts/login/", "en"),
    ("/ru/accounts/signup/", "ru"),
    ("/zh-hans/accounts/password/reset/", "zh-hans"),
])
def test_allauth_pages_render_inside_the_site_layout(client, url, lang):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{lang}">' in html
    assert 'class="site-header"' in html and 'class="site-footer"' in html
    assert '<form class="stack auth-form"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert html.count("<html") == 1
    assert "Menu:" not in html  # allauth's bare layout is not used


# --- sign-up by code, in Russian ------------------------------------------------------------------

def test_signup_in_russian_sends_a_russian_code_and_the_code_verifies_the_address(client, django_user_model):
    response = client.post("/ru/accounts/signup/", {
        "email": "pacient@example.ru", "password1": "dlinnyi-parol-2025", "password2": "dlinnyi-parol-2025"})
    assert response.status_code == 302
    confirm_url = response["Location"]
    assert confirm_url.startswith("/ru/accounts/")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["pacient@example.ru"]
    assert CYRILLIC.search(message.subject), message.subject
    assert CYRILLIC.search(message.body), message.body
    codes = [line.strip() for line in message.body.splitlines() if re.fullmatch(r"[A-Z0-9]{3,}(-[A-Z0-9]+)*", line.strip())]
    assert len(codes) == 1, message.body

    page = client.get(confirm_url)
    assert page.status_code == 200 and CYRILLIC.search(page.content.decode())
    response = client.post(confirm_url, {"code": codes[0]})
    assert response.status_code == 302
    user = django_user_model.objects.get(email="pacient@example.ru")
    assert EmailAddress.objects.get(user=user).verified
    assert client.session.get("_auth_user_id") == str(user.pk)  # logged in on confirmation


def test_a_wrong_code_does_not_verify(client, django_user_model):
    response = client.post("/ru/accounts/signup/", {
        "email": "pacient2@example.ru", "password1": "dlinnyi-parol-2025", "password2": "dlinnyi-parol-2025"})
    response = client.post(response["Location"], {"code": "WRONG-CODE"})
    assert response.status_code == 200
    assert not EmailAddress.objects.get(email="pacient2@example.ru").verified
    assert "_auth_user_id" not in client.session


# --- limits on guessing -------------------------------------------------------------------------------

def test_repeated_failed_logins_for_one_account_lock_it_for_a_while(client, django_user_model, settings):
    # the limits live in the shared cache: local memory here, Redis in CI's second pass
    assert "dummy" not in settings.CACHES["default"]["BACKEND"].lower()
    make_user(django_user_model, "target@example.com")
    url = reverse("account_login")
    for _ in range(5):  # ACCOUNT_RATE_LIMITS["login_failed"]: 5 per 5 minutes per account
        response = client.post(url, {"login": "target@example.com", "password": "wrong-guess"})
        assert response.status_code == 200
    # now even the right password is refused, with allauth's rate-limit message
    response = client.post(url, {"login": "target@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_too_many_login_posts_from_one_address_get_429(client):
    url = reverse("account_login")
    statuses = [client.post(url, {"login": f"guess{i}@example.com", "password": "x"}).status_code
                for i in range(30)]  # ACCOUNT_RATE_LIMITS["login"]: 30 per minute per IP
    assert statuses == [200] * 30
    refused = client.post(url, {"login": "guess@example.com", "password": "x"})
    assert refused.status_code == 429
    assert 'class="site-header"' in refused.content.decode()  # templates/429.html, in the site layout


# --- no account enumeration ------------------------------------------------------------------------

def _normalise(html):
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_password_reset_answers_the_same_for_known_and_unknown_emails(client, django_user_model):
    make_user(django_user_model, "known@example.com")
    url = reverse("account_reset_password")
    known = client.post(url, {"email": "known@example.com"})
    unknown = client.post(url, {"email": "nobody-here@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert _normalise(client.get(known["Location"]).content.decode()) == \
        _normalise(client.get(unknown["Location"]).content.decode())
    # both addresses get an email (the unknown one is told no account exists), so timing and mail match
    assert sorted(m.to[0] for m in mail.outbox) == ["known@example.com", "nobody-here@example.com"]


def test_signup_with_a_taken_email_does_not_reveal_it(client, django_user_model):
    make_user(django_user_model, "taken@example.com")
    taken = client.post("/en/accounts/signup/", {
        "email": "taken@example.com", "password1": "another-long-pass-1", "password2": "another-long-pass-1"})
    fresh = client.post("/en/accounts/signup/", {
        "email": "fresh@example.com", "password1": "another-long-pass-1", "password2": "another-long-pass-1"})
    assert taken.status_code == fresh.status_code == 302
    assert taken["Location"] == fresh["Location"]


# --- MFA for staff and editors ---------------------------------------------------------------------

def test_clinic_staff_without_mfa_are_sent_to_set_it_up(client, coordinator):
    client.force_login(coordinator)
    response = client.get("/desk/")
    assert response.status_code == 302
    with translation.override("en"):
        assert response["Location"] == reverse("mfa_activate_totp")


def test_editor_without_mfa_is_sent_to_set_it_up_before_the_wagtail_admin(client, editor):
    client.force_login(editor)
    response = client.get("/admin/")
    assert response.status_code == 302
    with translation.override("en"):
        assert response["Location"] == reverse("mfa_activate_totp")


def test_editor_with_mfa_reaches_the_wagtail_admin(client, editor):
    activate_demo_totp(editor)
    client.force_login(editor)
    assert client.get("/admin/").status_code == 200


def test_staff_login_asks_for_the_authenticator_code(client, coordinator):
    activate_demo_totp(coordinator)
    response = client.post(reverse("account_login"), {"login": coordinator.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    response = client.post(reverse("mfa_authenticate"), {"code": current_code(DEMO_TOTP_SECRET)})
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(coordinator.pk)


def test_django_admin_login_is_allauths(client):
    response = client.get("/django-admin/login/?next=/django-admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_wagtail_admin_login_is_allauths(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


# --- demo TOTP ---------------------------------------------------------------------------------------

def test_demo_totp_prints_a_valid_code(coordinator, capsys):
    activate_demo_totp(coordinator)
    activate_demo_totp(coordinator)  # idempotent
    assert totp_secret(coordinator) == DEMO_TOTP_SECRET
    call_command("demo_totp", coordinator.email)
    code = capsys.readouterr().out.strip()
    assert re.fullmatch(r"\d{6}", code)
    assert validate_totp_code(DEMO_TOTP_SECRET, code)


def test_demo_totp_is_refused_in_production(coordinator, settings):
    activate_demo_totp(coordinator)
    settings.PRODUCTION = True
    with pytest.raises(CommandError):
        call_command("demo_totp", coordinator.email)
    with pytest.raises(RuntimeError):
        activate_demo_totp(coordinator)

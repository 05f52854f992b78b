"""Edges an outside attack run found: failed-login limits behind the TLS proxy, account enumeration by the
sign-up's timing, and the demo accounts (public password and TOTP secret) in a production database."""

import statistics
import time

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core import mail
from django.core.checks import run_checks
from django.test import RequestFactory
from django.urls import reverse

from bookings.demo.data import DEMO_PASSWORD
from portal import ratelimit
from portal.accounts import AccountAdapter
from portal.net import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-9"
PROXY = "10.0.0.1"  # the TLS proxy: every request reaches Django from here
CLIENT_A = "203.0.113.7"
CLIENT_B = "198.51.100.9"
TOO_MANY = "Too many failed login attempts"


def make_user(django_user_model, email, password=PASSWORD, **extra):
    user = django_user_model.objects.create_user(email, email, password, **extra)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def login(client, email, password, forwarded_for=None):
    headers = {"REMOTE_ADDR": PROXY}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client.post(reverse("account_login"), {"login": email, "password": password}, **headers)


@pytest.fixture
def behind_one_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    return settings


@pytest.fixture
def no_trusted_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    return settings


# --- 1. failed-login limits count the client, not the proxy ---------------------------------------------

def test_one_clients_failed_logins_do_not_lock_out_another_client_behind_the_proxy(
        behind_one_proxy, client, django_user_model):
    make_user(django_user_model, "patient.b@example.com")
    attacker, patient = client, type(client)()
    for i in range(10):  # ACCOUNT_RATE_LIMITS["login_failed"]: 10 a minute per client address
        response = login(attacker, f"guess{i}@example.com", "wrong-guess", forwarded_for=CLIENT_A)
        assert response.status_code == 200 and TOO_MANY not in response.content.decode()
    # the attacker is now held back...
    refused = login(attacker, "guess-more@example.com", "wrong-guess", forwarded_for=CLIENT_A)
    assert TOO_MANY in refused.content.decode()
    # ...but another client, through the same proxy, signs in
    response = login(patient, "patient.b@example.com", PASSWORD, forwarded_for=CLIENT_B)
    assert response.status_code == 302, response.content.decode()[:500]
    assert patient.session.get("_auth_user_id") is not None


def test_forged_entries_left_of_the_proxys_do_not_escape_the_limit(behind_one_proxy, client):
    # the proxy appends the address it saw; what the client put in front of it is not believed
    for i in range(10):
        login(client, f"guess{i}@example.com", "wrong-guess", forwarded_for=f"192.0.2.{i}, {CLIENT_A}")
    refused = login(client, "guess@example.com", "wrong-guess", forwarded_for=f"192.0.2.99, {CLIENT_A}")
    assert TOO_MANY in refused.content.decode()


def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(no_trusted_proxy, client):
    for i in range(10):  # a new forged address every time: still one client (REMOTE_ADDR)
        login(client, f"guess{i}@example.com", "wrong-guess", forwarded_for=f"192.0.2.{i}")
    refused = login(client, "guess@example.com", "wrong-guess", forwarded_for="192.0.2.200")
    assert TOO_MANY in refused.content.decode()


@pytest.mark.parametrize("count, forwarded, remote, expected", [
    (0, "192.0.2.1", PROXY, PROXY),                            # no proxy trusted: header ignored
    (1, f"192.0.2.1, {CLIENT_A}", PROXY, CLIENT_A),             # the proxy's entry, not the forged one
    (2, f"192.0.2.1, {CLIENT_A}, 10.0.0.2", PROXY, CLIENT_A),   # two proxies: two hops from the right
    (2, CLIENT_A, PROXY, PROXY),                                # fewer entries than proxies: not believed
    (1, "not-an-address", PROXY, PROXY),                        # not an address: REMOTE_ADDR
    (1, "", PROXY, PROXY),
    (1, f"{CLIENT_A}:51234", PROXY, CLIENT_A),                  # some proxies write the port
    (1, "[2001:db8::7]:443", PROXY, "2001:db8::7"),
    (1, "2001:DB8:0:0::7", PROXY, "2001:db8::7"),               # canonical form
    (0, None, "garbage", None),
])
def test_client_ip(settings, count, forwarded, remote, expected):
    settings.TRUSTED_PROXY_COUNT = count
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **extra)
    assert client_ip(request) == expected


def test_allauth_and_our_limiter_count_the_same_client(behind_one_proxy):
    from django.contrib.auth.models import AnonymousUser

    a = RequestFactory().post("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT_A)
    b = RequestFactory().post("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT_B)
    a.user = b.user = AnonymousUser()
    assert AccountAdapter(a).get_client_ip(a) == client_ip(a) == CLIENT_A
    assert [ratelimit.allow_request("test", a, "3/m") for _ in range(4)] == [True, True, True, False]
    assert ratelimit.allow_request("test", b, "3/m")  # client B is not held back by A


# --- 2. sign-up does not reveal by its timing whether an address is registered --------------------------

class CountingPBKDF2(PBKDF2PasswordHasher):
    """Production's hasher (Django's PBKDF2, at its full cost: a cheaper one hides the difference behind the
    ~0.1 s a sign-up request costs anyway), with a call counter."""

    calls = 0

    def encode(self, password, salt, iterations=None):
        type(self).calls += 1
        return super().encode(password, salt, iterations)


@pytest.fixture
def production_hasher(settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingPBKDF2"]
    CountingPBKDF2.calls = 0
    return CountingPBKDF2


def signup(client, email):
    return client.post("/en/accounts/signup/", {"email": email, "password1": "another-long-pass-1",
                                                "password2": "another-long-pass-1"})


def test_signup_takes_as_long_for_a_registered_email_as_for_a_new_one(production_hasher, django_user_model):
    from django.test import Client

    known = [f"known{i}@example.com" for i in range(6)]
    for email in known:  # no hashing here: only the sign-ups are measured
        user = django_user_model.objects.create_user(email, email, None)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    timings = {"known": [], "new": []}
    signup(Client(), known.pop())  # warm up (first-request imports and template loading)
    for i, email in enumerate(known):
        for kind, address in (("new", f"new{i}@example.com"), ("known", email)):
            client = Client()
            start = time.perf_counter()
            response = signup(client, address)
            timings[kind].append(time.perf_counter() - start)
            assert response.status_code == 302  # the same answer either way (tests/accounts)
    known_median, new_median = statistics.median(timings["known"]), statistics.median(timings["new"])
    assert max(known_median, new_median) < 3 * min(known_median, new_median), timings


def test_signup_with_a_registered_email_hashes_and_mails_like_a_new_one(production_hasher, client,
                                                                        django_user_model):
    make_user(django_user_model, "taken@example.com", password=None)
    work = {}
    for kind, email in (("new", "fresh@example.com"), ("known", "taken@example.com")):
        production_hasher.calls, mail.outbox = 0, []
        assert signup(type(client)(), email).status_code == 302
        work[kind] = (production_hasher.calls, [m.to for m in mail.outbox])
    assert work == {"new": (1, [["fresh@example.com"]]), "known": (1, [["taken@example.com"]])}


# --- 3. demo accounts are refused in production ---------------------------------------------------------

DEMO_ADMIN = "admin@emhana.example"  # made by `manage.py load_demo` (tests/conftest.py)


def test_demo_account_signs_in_outside_production(settings, client):
    settings.PRODUCTION = False
    response = login(client, DEMO_ADMIN, DEMO_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")  # on to its (public) TOTP code


def test_demo_account_is_refused_in_production(settings, client):
    settings.PRODUCTION = True
    response = login(client, DEMO_ADMIN, DEMO_PASSWORD)
    assert response.status_code == 200
    assert "Demo accounts cannot sign in on this site" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("mfa_authenticate")).status_code != 200  # no half-done login to finish


def test_demo_account_is_refused_in_production_through_the_app_api(settings, client):
    settings.PRODUCTION = True
    response = client.post("/_allauth/browser/v1/auth/login",
                           {"email": DEMO_ADMIN, "password": DEMO_PASSWORD}, content_type="application/json")
    assert response.status_code == 400
    assert "Demo accounts cannot sign in on this site" in response.content.decode()


def test_every_other_way_in_is_refused_for_a_demo_account_in_production(settings, django_user_model):
    """Login by code, passkey and login on email confirmation all go through allauth's perform_login."""
    from allauth.account.internal.flows.login import perform_login
    from allauth.account.models import Login
    from django.contrib.messages import get_messages
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware

    settings.PRODUCTION = True
    request = RequestFactory().post("/en/accounts/login/")
    SessionMiddleware(lambda r: None).process_request(request)
    MessageMiddleware(lambda r: None).process_request(request)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    demo = django_user_model.objects.get(email=DEMO_ADMIN)
    response = perform_login(request, Login(user=demo, email=DEMO_ADMIN))
    assert response.status_code == 302 and response["Location"] == reverse("account_login")
    assert "_auth_user_id" not in request.session
    assert any("Demo accounts cannot sign in" in str(m) for m in get_messages(request))


def test_own_accounts_still_sign_in_in_production(settings, client, django_user_model):
    settings.PRODUCTION = True
    make_user(django_user_model, "real.patient@example.com")
    response = login(client, "real.patient@example.com", PASSWORD)
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") is not None


def _deploy_warnings():
    return {m.id for m in run_checks(include_deployment_checks=True)}


def test_check_deploy_warns_about_demo_accounts_in_production(settings, django_user_model):
    settings.PRODUCTION = True
    assert "emhana.W001" in _deploy_warnings()
    from bookings.models import Booking

    Booking.objects.filter(user__email__endswith="@emhana.example").delete()  # the demo patients' (issue 10)
    django_user_model.objects.filter(email__endswith="@emhana.example").delete()
    assert "emhana.W001" not in _deploy_warnings()


def test_check_deploy_is_quiet_about_demo_accounts_outside_production(settings):
    settings.PRODUCTION = False
    assert "emhana.W001" not in _deploy_warnings()


def test_check_deploy_warns_when_production_trusts_no_proxy(settings):
    settings.PRODUCTION = True
    settings.TRUSTED_PROXY_COUNT = 0
    assert "emhana.W002" in _deploy_warnings()
    settings.TRUSTED_PROXY_COUNT = 1
    assert "emhana.W002" not in _deploy_warnings()

"""allauth ships no Kazakh or Tajik catalogue; vendor_locale/ supplies them. Its login, sign-up and
verification email must reach Kazakh- and Tajik-speaking patients in their language, not in English."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.utils import translation

pytestmark = pytest.mark.django_db

VENDOR_LOCALE = Path(settings.BASE_DIR) / "vendor_locale"
PASSWORD = "uzyn-kupiya-soz-2026"


@pytest.fixture(autouse=True)
def _english():
    translation.activate("en")
    yield
    translation.activate("en")


def _text(response):
    assert response.status_code == 200
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


PAGES = {
    # url: (translated labels that must appear, English labels that must not)
    "/kk/accounts/login/": (
        ["Кіру", "Құпиясөзді ұмыттыңыз ба?", "Мені есте сақтау", "алдымен", "тіркеліңіз"],
        ["Forgot your password?", "Remember Me", "If you have not created an account yet"],
    ),
    "/kk/accounts/signup/": (
        ["Тіркелу", "Аккаунтыңыз бар ма?", "кіріңіз"],
        ["Sign Up", "Already have an account?", "Your password must contain at least"],
    ),
    "/tg/accounts/login/": (
        ["Ворид шудан", "Пароли худро фаромӯш кардед?", "Маро дар хотир нигоҳ доред", "сабти ном кунед"],
        ["Forgot your password?", "Remember Me", "If you have not created an account yet"],
    ),
    "/tg/accounts/signup/": (
        ["Сабти ном", "Аллакай ҳисоб доред?", "ворид шавед"],
        ["Sign Up", "Already have an account?", "Your password must contain at least"],
    ),
}


@pytest.mark.parametrize("url", PAGES)
def test_login_and_signup_pages_are_in_kazakh_and_tajik(client, url):
    text = _text(client.get(url))
    translated, english = PAGES[url]
    for label in translated:
        assert label in text, (url, label)
    for label in english:
        assert label not in text, (url, label)
    assert "Sign In" not in text and "Sign in with a passkey" not in text


@pytest.mark.parametrize("lang, subject, body", [
    ("kk", "Электрондық пошта мекенжайыңызды растаңыз", "Электрондық поштаны растау кодыңыз төменде берілген."),
    ("tg", "Лутфан суроғаи почтаи электронии худро тасдиқ кунед", "Коди тасдиқи почтаи электронии шумо"),
])
def test_the_verification_email_is_in_the_patients_language(client, lang, subject, body):
    email = f"bemor.{lang}@example.com"
    response = client.post(f"/{lang}/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith(f"/{lang}/accounts/")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [email]
    assert subject in message.subject, message.subject
    assert "Please Confirm Your Email Address" not in message.subject
    assert body in message.body, message.body
    assert "Your email verification code is listed below" not in message.body

    page = _text(client.get(response["Location"]))  # the code-entry page
    assert "Enter Email Verification Code" not in page


def test_vendor_locale_outranks_allauth_and_translates_its_messages():
    apps = settings.INSTALLED_APPS
    assert apps.index("vendor_locale") == apps.index("allauth") - 1  # earlier app = its catalogue wins
    for lang, sign_in, forgot in [("kk", "Кіру", "Құпиясөзді ұмыттыңыз ба?"), ("tg", "Ворид шудан", "Паролро фаромӯш кардед?")]:
        with translation.override(lang):
            assert translation.gettext("Sign In") == sign_in
            assert translation.gettext("Forgot Password?") == forgot
            assert translation.gettext("Too many failed login attempts. Try again later.") != (
                "Too many failed login attempts. Try again later.")
            assert translation.ngettext(
                "You have added %(count)s security key.", "You have added %(count)s security keys.", 2) % {"count": 2} != (
                "You have added 2 security keys.")


def test_vendor_locale_has_no_strings_of_its_own_for_makemessages():
    """makemessages builds a catalogue for every locale/ folder from the sources beside it; with
    --no-obsolete, one marked string here would rebuild these .po files from it and drop allauth's
    translations. So the app keeps no marked strings (the Makefile also --ignore's the folder)."""
    sources = [p for p in VENDOR_LOCALE.rglob("*") if p.suffix in {".py", ".html", ".txt"}]
    assert sorted(p.name for p in sources) == ["__init__.py", "apps.py"]
    for path in sources:
        code = path.read_text()
        assert "gettext" not in code and "translation import" not in code and "_(" not in code, path
    for lang in ("kk", "tg"):
        assert (VENDOR_LOCALE / "locale" / lang / "LC_MESSAGES" / "django.mo").exists(), f"compile {lang}"

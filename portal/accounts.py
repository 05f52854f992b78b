"""allauth's adapter: its emails are signed with the site's name and link to the site's real address.

Without it allauth names the site after the request's host ("127.0.0.1:8011") because django.contrib.sites
is not installed (Wagtail has its own sites).

It also
- gives allauth's per-IP limits the client's address through the trusted proxies (``portal.net.client_ip``),
  not the proxy's, so one client's failed logins do not lock out everyone;
- makes a sign-up with an email that already has an account cost what a new sign-up costs (a password hash
  with the configured hasher, one email through ``send_mail``), so the answer's timing does not say whether
  the address is registered;
- refuses the demo accounts (``manage.py load_demo``: public password and TOTP secret) in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.stagekit import clear_login
from allauth.account.models import EmailAddress
from allauth.core.internal.httpkit import headed_redirect_response
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.hashers import make_password
from django.core.exceptions import PermissionDenied
from django.utils.crypto import get_random_string
from django.utils.translation import gettext_lazy as _

from .net import client_ip

# Every account `manage.py load_demo` creates (bookings/demo.py: coordinators, editor, admin) is in this
# reserved domain (RFC 2606: no real mailbox can be there), so the domain identifies them.
DEMO_EMAIL_DOMAIN = "emhana.example"
DEMO_LOGIN_REFUSED = _("Demo accounts cannot sign in on this site. Please use your own account.")


@dataclass(frozen=True)
class Brand:
    """What allauth's templates read from ``current_site``."""

    name: str
    domain: str


def brand() -> Brand:
    return Brand(name=settings.SITE_NAME, domain=urlsplit(settings.SITE_URL).netloc)


def is_demo_email(email: str | None) -> bool:
    local, at, domain = (email or "").strip().lower().rpartition("@")
    return bool(local and at) and domain == DEMO_EMAIL_DOMAIN


def is_demo_account(user) -> bool:
    """A user made by ``load_demo``: its email, or any of its addresses, is in the demo domain."""
    if user is None:
        return False
    if is_demo_email(getattr(user, "email", "")):
        return True
    if getattr(user, "pk", None) is None:
        return False
    return EmailAddress.objects.filter(user_id=user.pk, email__iendswith="@" + DEMO_EMAIL_DOMAIN).exists()


def demo_login_refused(user) -> bool:
    return bool(settings.PRODUCTION) and is_demo_account(user)


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        super().send_mail(template_prefix, email, {**context, "current_site": brand()})

    # --- the client behind the proxy ----------------------------------------------------------------

    def get_client_ip(self, request) -> str:
        """What allauth's per-IP limits (login, login_failed, signup…) count: see portal.net.client_ip."""
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine client IP address")
        return ip

    # --- no enumeration by timing -------------------------------------------------------------------

    def respond_email_verification_sent(self, request, user):
        """The end of every sign-up. A new address has by now cost a password hash (``save_user``) and a
        confirmation email; an address that already has an account (``user`` is None: allauth's
        enumeration prevention) has been sent its "account already exists" email through the same
        ``send_mail``, and here pays for the hash it skipped, with the same configured hasher."""
        if user is None:
            make_password(get_random_string(32))
        return super().respond_email_verification_sent(request, user)

    # --- demo accounts are refused in production ----------------------------------------------------

    def authenticate(self, request, **credentials):
        """Password logins: the refusal is shown on the login form itself."""
        user = super().authenticate(request, **credentials)
        if user is not None and demo_login_refused(user):
            raise forms.ValidationError(DEMO_LOGIN_REFUSED, code="demo_account")
        return user

    def pre_login(self, request, user, **kwargs):
        """Every other way in (login by code, passkey, login on email confirmation): back to the login
        page with the same message, signed out."""
        if demo_login_refused(user):
            clear_login(request)
            messages.error(request, DEMO_LOGIN_REFUSED)
            return headed_redirect_response("account_login")
        return super().pre_login(request, user, **kwargs)

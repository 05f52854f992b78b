"""Two-factor authentication for demo staff: TOTP activated with a known secret, so a demo can sign in.

Never in production: the secret is in the source. ``manage.py demo_totp <email>`` prints the current code.
"""

from __future__ import annotations

import time

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.db import transaction

# base32, 160 bits; public on purpose (demo accounts only)
DEMO_TOTP_SECRET = "EMHANADEMOTOTPSECRETKZQAZXSWEDCV"


class DemoMFARefused(RuntimeError):
    pass


def _refuse_in_production():
    if settings.PRODUCTION:
        raise DemoMFARefused("Demo two-factor secrets are refused in production.")


@transaction.atomic
def activate_demo_totp(user, secret: str = DEMO_TOTP_SECRET) -> Authenticator:
    """Give ``user`` a TOTP authenticator with ``secret`` (idempotent: an existing one with the same secret
    is kept, a different one is replaced)."""
    _refuse_in_production()
    existing = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if existing is not None:
        if decrypt(existing.data["secret"]) == secret:
            return existing
        existing.delete()
    return TOTP.activate(user, secret).instance


def totp_secret(user) -> str | None:
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    return decrypt(authenticator.data["secret"]) if authenticator else None


def current_code(secret: str, at: float | None = None) -> str:
    counter = int(time.time() if at is None else at) // mfa_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, counter))


def seconds_left(at: float | None = None) -> int:
    now = int(time.time() if at is None else at)
    return mfa_settings.TOTP_PERIOD - now % mfa_settings.TOTP_PERIOD

"""System checks for `manage.py check --deploy` (registered from portal/__init__.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.db import DatabaseError
from django.db.models import Q


@checks.register(checks.Tags.security, deploy=True)
def demo_accounts_in_production(app_configs=None, **kwargs):
    """The demo accounts (`manage.py load_demo`) have a public password and TOTP secret. Logins to them are
    refused in production (portal.accounts), but they should not be in a production database at all."""
    if not settings.PRODUCTION:
        return []
    # lazy: portal/__init__.py imports this module as the settings load; portal.accounts needs allauth's models
    from .accounts import DEMO_EMAIL_DOMAIN

    suffix = "@" + DEMO_EMAIL_DOMAIN
    try:
        emails = sorted(
            get_user_model().objects.filter(
                Q(email__iendswith=suffix) | Q(emailaddress__email__iendswith=suffix)
            ).values_list("email", flat=True).distinct()
        )
    except DatabaseError:  # no database yet (before migrate): nothing to find
        return []
    if not emails:
        return []
    shown = ", ".join(emails[:5]) + (f" and {len(emails) - 5} more" if len(emails) > 5 else "")
    return [checks.Warning(
        f"The database holds {len(emails)} demo account(s) ({shown}), whose password and two-factor secret "
        "are public (bookings/demo.py, bookings/demo_mfa.py).",
        hint="Delete them (or the database was loaded with `manage.py load_demo` by mistake). Their logins "
             "are refused while PRODUCTION is on.",
        id="emhana.W001",
    )]


@checks.register(checks.Tags.security, deploy=True)
def proxy_trust_in_production(app_configs=None, **kwargs):
    """Production assumes a TLS proxy in front (SECURE_PROXY_SSL_HEADER): without TRUSTED_PROXY_COUNT every
    client has the proxy's address, and per-IP limits lock out everyone at once."""
    if not settings.PRODUCTION or getattr(settings, "TRUSTED_PROXY_COUNT", 0) > 0:
        return []
    return [checks.Warning(
        "TRUSTED_PROXY_COUNT is 0: behind a proxy every client has the proxy's address, so ten failed logins "
        "from anyone lock out every user.",
        hint="Set TRUSTED_PROXY_COUNT to the number of proxies that append to X-Forwarded-For (or silence "
             "emhana.W002 if the server faces clients directly).",
        id="emhana.W002",
    )]

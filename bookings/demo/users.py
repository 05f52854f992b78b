"""Demo accounts with the demo password and a verified address (idempotent; never in production), shared by the
demo data of every concern (bookings.demo.data, bookings.consult.demo, bookings.patients.demo)."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model

DEMO_PASSWORD = "emhana-demo-2026"


def demo_user(email, created, **extra):
    User = get_user_model()
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(username=email.split("@")[0][:150], email=email, password=DEMO_PASSWORD,
                                        **extra)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        created.append(f"user {email}")
        try:
            # optional: allauth's internal TOTP API (bookings.demo.mfa) may be missing; the demo then has no TOTP
            from bookings.demo.mfa import DEMO_TOTP_SECRET, activate_demo_totp

            activate_demo_totp(user, DEMO_TOTP_SECRET)
        except ImportError:
            pass
    return user

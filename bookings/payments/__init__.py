"""Payments: a provider interface and the configured provider.

Booking code uses :func:`get_provider` and the types exported here; only
``bookings.payments.stripe_provider`` knows about Stripe.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import (
    PAYMENT_STATUSES,
    InvalidWebhook,
    PaymentError,
    PaymentProvider,
    PaymentResult,
    ProviderUnavailable,
    RefundResult,
    WebhookEvent,
)

__all__ = [
    "PAYMENT_STATUSES",
    "InvalidWebhook",
    "PaymentError",
    "PaymentProvider",
    "PaymentResult",
    "ProviderUnavailable",
    "RefundResult",
    "WebhookEvent",
    "get_provider",
]


def get_provider() -> PaymentProvider:
    """The configured payment provider, built from Django settings on each call.

    Settings are read lazily (so ``override_settings`` works); providers are
    cached per distinct configuration so HTTP connections are reused.

    STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET,
    STRIPE_API_BASE (None = real Stripe; a URL = localstripe in dev/tests),
    optional STRIPE_TIMEOUT (seconds) and STRIPE_MAX_NETWORK_RETRIES.
    """
    secret_key = getattr(settings, "STRIPE_SECRET_KEY", "") or ""
    if not secret_key:
        raise ImproperlyConfigured("STRIPE_SECRET_KEY is not set")
    api_base = getattr(settings, "STRIPE_API_BASE", None) or None
    return _build_provider(
        secret_key,
        getattr(settings, "STRIPE_PUBLISHABLE_KEY", "") or "",
        getattr(settings, "STRIPE_WEBHOOK_SECRET", "") or "",
        api_base,
        float(getattr(settings, "STRIPE_TIMEOUT", 20.0)),
        int(getattr(settings, "STRIPE_MAX_NETWORK_RETRIES", 0 if api_base else 2)),
    )


@lru_cache(maxsize=8)
def _build_provider(
    secret_key: str,
    publishable_key: str,
    webhook_secret: str,
    api_base: str | None,
    timeout: float,
    max_network_retries: int,
) -> PaymentProvider:
    from .stripe_provider import StripeProvider  # lazy: the stripe SDK takes ~0.4 s to import

    return StripeProvider(
        secret_key=secret_key,
        publishable_key=publishable_key,
        webhook_secret=webhook_secret,
        api_base=api_base,
        timeout=timeout,
        max_network_retries=max_network_retries,
    )

"""The payment provider interface.

Nothing here imports ``stripe``: the rest of the project talks to payments only
through :class:`PaymentProvider` and the frozen result types below, so a provider
can be swapped (or faked) without touching booking code.

Amounts are always integers in the currency's minor units (KZT is a two-decimal
currency in Stripe: 350 000 tenge is ``35_000_000``) and currencies are lower-case
ISO 4217 codes.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

#: Every status a :class:`PaymentResult` can carry.
PAYMENT_STATUSES = frozenset(
    {"succeeded", "requires_action", "processing", "failed", "canceled", "requires_capture"}
)


@dataclass(frozen=True)
class PaymentResult:
    status: str  # one of PAYMENT_STATUSES
    intent_id: str | None
    amount: int  # minor units
    currency: str  # lower-case ISO 4217
    client_secret: str | None = None  # only for requires_action (3-D Secure step in the browser)
    error_code: str | None = None  # provider code, e.g. "card_declined"
    decline_code: str | None = None  # issuer reason, e.g. "insufficient_funds" (real Stripe only)
    # The provider's own English message. Never show it raw to patients: map
    # error_code / decline_code to translated text instead.
    error_message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def needs_action(self) -> bool:
        return self.status == "requires_action"


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # "succeeded" | "pending" | "requires_action" | "failed" | "canceled"
    amount: int
    currency: str


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str  # e.g. "payment_intent.succeeded"
    object_id: str | None  # id of data.object, e.g. the PaymentIntent id
    object: dict[str, Any] = field(default_factory=dict)  # data.object as plain dicts/lists


class PaymentError(Exception):
    """Base class for payment failures that are not a card decline.

    ``code`` carries the provider's error code when there is one (for logs and
    for mapping to translated text); the message is for logs, not patients.
    """

    def __init__(self, message: str = "", *, code: str | None = None):
        super().__init__(message)
        self.code = code


class ProviderUnavailable(PaymentError):
    """Network error, timeout, rate limit or 5xx from the provider.

    Safe to retry *with the same idempotency key*: the provider either did
    nothing or will replay the original outcome.
    """


class InvalidWebhook(PaymentError):
    """A webhook whose signature, timestamp or payload does not check out."""


class PaymentProvider(abc.ABC):
    name: str
    publishable_key: str

    @abc.abstractmethod
    def create_and_confirm(
        self,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        idempotency_key: str,
        metadata: dict[str, str],
        return_url: str | None = None,
    ) -> PaymentResult:
        """Create a payment for ``payment_method`` and confirm it at once ("finalize on the server").

        A card decline is not an exception: it returns ``status="failed"`` with
        ``error_code`` / ``decline_code``. ``requires_action`` carries the
        ``client_secret`` the browser needs for 3-D Secure. Raises
        :class:`ProviderUnavailable` when the outcome is unknown (retry with the
        same ``idempotency_key``) and :class:`PaymentError` for anything else.
        """

    @abc.abstractmethod
    def retrieve(self, intent_id: str) -> PaymentResult:
        """Current state of a payment (e.g. after the browser finished 3-D Secure)."""

    @abc.abstractmethod
    def cancel(self, intent_id: str) -> PaymentResult:
        """Cancel a payment that has not succeeded. Raises PaymentError if it cannot be canceled."""

    @abc.abstractmethod
    def refund(
        self, *, intent_id: str, amount: int, idempotency_key: str, metadata: dict[str, str]
    ) -> RefundResult:
        """Refund ``amount`` of a succeeded payment.

        The caller must cap refunds at what was charged (not every provider or
        emulator enforces that) and keep ``idempotency_key`` stable per refund.
        """

    @abc.abstractmethod
    def parse_webhook(self, payload: bytes, signature_header: str) -> WebhookEvent:
        """Verify and parse a webhook body. Raises :class:`InvalidWebhook`."""

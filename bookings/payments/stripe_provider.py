"""Stripe implementation of :class:`PaymentProvider`.

This is the ONLY module in the project that imports ``stripe``.

Flow ("finalize payments on the server"): the browser collects card details with
Stripe's Payment Element and sends us a PaymentMethod id; we create the
PaymentIntent with ``confirm=True``; if the result is ``requires_action`` the
browser runs the 3-D Secure step with the ``client_secret`` and we ``retrieve``
the intent afterwards (webhooks confirm it independently).

In development and tests ``api_base`` points at localstripe, which rejects
``description``, ``receipt_email``, ``automatic_payment_methods`` and
``return_url`` on PaymentIntent create, ignores idempotency keys and does not cap
refunds: callers enforce idempotency and refund caps themselves.

Logging: Stripe error codes, HTTP status and request ids only; never card data,
client secrets or keys.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import stripe

from .base import (
    InvalidWebhook,
    PaymentError,
    PaymentProvider,
    PaymentResult,
    ProviderUnavailable,
    RefundResult,
    WebhookEvent,
)

logger = logging.getLogger("bookings.payments")

_STATUS_MAP = {
    "succeeded": "succeeded",
    "requires_action": "requires_action",
    "processing": "processing",
    "requires_capture": "requires_capture",
    "canceled": "canceled",
    # After a decline or a failed 3-D Secure attempt Stripe puts the intent back
    # to requires_payment_method; in our flow (the intent is always created with
    # a payment method and confirmed) that, and requires_confirmation, mean
    # "this attempt failed, the patient must try again".
    "requires_payment_method": "failed",
    "requires_confirmation": "failed",
}

_INTENT_ID_RE = re.compile(r"^pi_[A-Za-z0-9_]+$")


def _as_dict(obj: Any) -> dict[str, Any]:
    """stripe-python 16 objects are not dicts: convert (recursively) when needed."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return {}


def _result_from_intent(pi: dict[str, Any]) -> PaymentResult:
    raw_status = pi.get("status")
    status = _STATUS_MAP.get(raw_status or "")
    if status is None:
        logger.warning(
            "Unknown PaymentIntent status %r for %s; treating as processing", raw_status, pi.get("id")
        )
        status = "processing"
    err = _as_dict(pi.get("last_payment_error")) if status == "failed" else {}
    return PaymentResult(
        status=status,
        intent_id=pi.get("id"),
        amount=int(pi.get("amount") or 0),
        currency=str(pi.get("currency") or "").lower(),
        client_secret=pi.get("client_secret") if status == "requires_action" else None,
        error_code=err.get("code"),
        decline_code=err.get("decline_code"),
        error_message=err.get("message"),
    )


def _result_from_refund(refund: dict[str, Any]) -> RefundResult:
    return RefundResult(
        refund_id=refund["id"],
        status=str(refund.get("status") or ""),
        amount=int(refund.get("amount") or 0),
        currency=str(refund.get("currency") or "").lower(),
    )


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive integer in minor units, got {amount!r}")


def _check_idempotency_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > 255:
        raise ValueError("idempotency_key must be a non-empty string of at most 255 characters")


def _check_intent_id(intent_id: str) -> None:
    if not isinstance(intent_id, str) or not _INTENT_ID_RE.match(intent_id):
        raise ValueError(f"not a PaymentIntent id: {intent_id!r}")


class StripeProvider(PaymentProvider):
    name = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        publishable_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        timeout: float = 20.0,
        max_network_retries: int = 2,
    ):
        if not secret_key:
            raise ValueError("secret_key is required")
        self.publishable_key = publishable_key
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._api_base = api_base.rstrip("/") if api_base else None
        self._timeout = timeout
        kwargs: dict[str, Any] = {
            "max_network_retries": max_network_retries,
            "http_client": stripe.RequestsClient(timeout=timeout),
        }
        if self._api_base:
            kwargs["base_addresses"] = {"api": self._api_base}
        self._client = stripe.StripeClient(secret_key, **kwargs)

    def __repr__(self) -> str:  # never show keys
        return f"<StripeProvider api_base={self._api_base or 'stripe'}>"

    @property
    def is_emulated(self) -> bool:
        """True when talking to localstripe (or another stand-in) instead of Stripe."""
        return self._api_base is not None

    # -- errors -------------------------------------------------------------

    def _translate(self, exc: stripe.StripeError, operation: str) -> PaymentError:
        status = exc.http_status
        logger.warning(
            "Stripe %s failed: %s code=%s http_status=%s request_id=%s",
            operation,
            type(exc).__name__,
            exc.code,
            status,
            exc.request_id,
        )
        message = f"Stripe {operation} failed: {type(exc).__name__} (HTTP {status}): {exc.user_message or ''}"
        if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
            return ProviderUnavailable(message, code=exc.code)
        if isinstance(exc, stripe.APIError) and (status is None or status >= 500):
            return ProviderUnavailable(message, code=exc.code)
        return PaymentError(message, code=exc.code)

    def _card_error_result(self, exc: stripe.CardError, amount: int, currency: str) -> PaymentResult:
        err = _as_dict(exc.error)
        pi = err.get("payment_intent")
        pi = _as_dict(pi) if not isinstance(pi, str) else {"id": pi}
        intent_id = pi.get("id")
        if intent_id is None and err.get("charge"):
            # Real Stripe puts the intent in the error; localstripe only names the charge.
            intent_id = self._intent_for_charge(err["charge"])
        code = exc.code or err.get("code")
        decline_code = err.get("decline_code")
        logger.info(
            "Stripe card error: code=%s decline_code=%s intent=%s request_id=%s",
            code,
            decline_code,
            intent_id,
            exc.request_id,
        )
        return PaymentResult(
            status="failed",
            intent_id=intent_id,
            amount=int(pi.get("amount") or amount),
            currency=str(pi.get("currency") or currency).lower(),
            error_code=code,
            decline_code=decline_code,
            error_message=err.get("message") or exc.user_message,
        )

    def _intent_for_charge(self, charge_id: str) -> str | None:
        try:
            charge = _as_dict(self._client.v1.charges.retrieve(charge_id))
        except stripe.StripeError as exc:
            logger.info("Could not look up charge %s: %s", charge_id, type(exc).__name__)
            return None
        pi = charge.get("payment_intent")
        return pi if isinstance(pi, str) else _as_dict(pi).get("id")

    # -- PaymentProvider ----------------------------------------------------

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
        _check_amount(amount)
        _check_idempotency_key(idempotency_key)
        currency = currency.lower()
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "payment_method": payment_method,
            # Cards only: no automatic_payment_methods (localstripe 400s on it), and
            # with an explicit card-only list Stripe does not demand a return_url.
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {str(k): str(v) for k, v in (metadata or {}).items()},
        }
        if return_url and not self.is_emulated:
            # localstripe rejects return_url; real Stripe uses it for redirect-based next actions.
            params["return_url"] = return_url
        try:
            pi = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.CardError as exc:
            return self._card_error_result(exc, amount, currency)
        except stripe.StripeError as exc:
            raise self._translate(exc, "create_and_confirm") from exc
        return _result_from_intent(_as_dict(pi))

    def retrieve(self, intent_id: str) -> PaymentResult:
        _check_intent_id(intent_id)
        try:
            pi = self._client.v1.payment_intents.retrieve(intent_id)
        except stripe.StripeError as exc:
            raise self._translate(exc, "retrieve") from exc
        return _result_from_intent(_as_dict(pi))

    def cancel(self, intent_id: str) -> PaymentResult:
        _check_intent_id(intent_id)
        try:
            pi = self._client.v1.payment_intents.cancel(intent_id)
        except stripe.StripeError as exc:
            raise self._translate(exc, "cancel") from exc
        return _result_from_intent(_as_dict(pi))

    def refund(
        self, *, intent_id: str, amount: int, idempotency_key: str, metadata: dict[str, str]
    ) -> RefundResult:
        _check_intent_id(intent_id)
        _check_amount(amount)
        _check_idempotency_key(idempotency_key)
        params = {
            "payment_intent": intent_id,
            "amount": amount,
            "metadata": {str(k): str(v) for k, v in (metadata or {}).items()},
        }
        try:
            refund = self._client.v1.refunds.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise self._translate(exc, "refund") from exc
        return _result_from_refund(_as_dict(refund))

    def parse_webhook(self, payload: bytes, signature_header: str) -> WebhookEvent:
        if not self._webhook_secret:
            raise InvalidWebhook("no webhook secret configured")
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        try:
            event = stripe.Webhook.construct_event(payload, signature_header, self._webhook_secret)
            obj = _as_dict(event.data.object)
            result = WebhookEvent(id=event.id, type=event.type, object_id=obj.get("id"), object=obj)
        except stripe.SignatureVerificationError as exc:
            logger.warning("Rejected webhook: bad signature")
            raise InvalidWebhook("bad webhook signature") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # ValueError covers bad JSON and bad UTF-8; the others a JSON body
            # that is not an event.
            logger.warning("Rejected webhook: bad payload (%s)", type(exc).__name__)
            raise InvalidWebhook("bad webhook payload") from exc
        return result

    # -- test helpers (tests and the browser test double only) -------------

    def create_test_payment_method(self, card_number: str) -> str:
        """Create a card PaymentMethod from a raw test card number; returns its id.

        Works against localstripe. Real Stripe refuses raw card numbers unless
        the account has raw card data APIs enabled, and live keys are refused here.
        """
        if self._secret_key.startswith(("sk_live_", "rk_live_")):
            raise PaymentError("create_test_payment_method refuses live keys")
        params = {
            "type": "card",
            "card": {"number": card_number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
        try:
            pm = self._client.v1.payment_methods.create(params=params)
        except stripe.StripeError as exc:
            raise self._translate(exc, "create_test_payment_method") from exc
        return pm.id

    def authenticate_3ds(self, intent_id: str, client_secret: str, success: bool = True) -> PaymentResult:
        """Complete (or fail) the 3-D Secure step the way localstripe's Stripe.js does.

        Only valid against localstripe: ``POST /v1/payment_intents/<id>/_authenticate``
        authenticated with the publishable key and the intent's client secret.
        """
        if not self._api_base:
            raise PaymentError("authenticate_3ds only works against localstripe (STRIPE_API_BASE)")
        _check_intent_id(intent_id)
        url = (
            f"{self._api_base}/v1/payment_intents/{intent_id}/_authenticate"
            f"?success={'true' if success else 'false'}"
        )
        body = urllib.parse.urlencode({"key": self.publishable_key, "client_secret": client_secret}).encode()
        request = urllib.request.Request(url, data=body, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=self._timeout) as response:
                data = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise ProviderUnavailable(f"localstripe _authenticate: HTTP {exc.code}") from exc
            raise PaymentError(f"localstripe _authenticate: HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ProviderUnavailable(f"localstripe _authenticate: {type(exc).__name__}") from exc
        return _result_from_intent(data)

"""StripeProvider against a real localstripe (in-process, 127.0.0.1, no disk).

No Django here: the provider is built with explicit keys. A small stub server
stands in for the responses only real Stripe gives (errors carrying the
PaymentIntent and decline_code, 5xx, 429) and records what we send.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from bookings.payments import (
    InvalidWebhook,
    PaymentError,
    PaymentResult,
    ProviderUnavailable,
    RefundResult,
    WebhookEvent,
)
from bookings.payments.stripe_provider import StripeProvider
from tests.localstripe_server import LocalStripe, WebhookRecorder, start_localstripe, wait_for

SECRET_KEY = "sk_test_emhana_localstripe"
PUBLISHABLE_KEY = "pk_test_emhana_localstripe"
WEBHOOK_SECRET = "whsec_emhana_test_secret"

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"
CARD_3DS = "4000002500003155"

AMOUNT = 35_000_000  # 350 000 tenge in minor units (KZT is two-decimal in Stripe)
PICKLE = "/tmp/localstripe.pickle"


def _pickle_state() -> tuple[bool, float | None]:
    try:
        return True, os.stat(PICKLE).st_mtime
    except FileNotFoundError:
        return False, None


@pytest.fixture(scope="module")
def localstripe():
    before = _pickle_state()
    ls = start_localstripe()
    try:
        yield ls
    finally:
        ls.stop()
    assert _pickle_state() == before, "localstripe touched /tmp/localstripe.pickle"


def make_provider(api_base: str | None, webhook_secret: str = WEBHOOK_SECRET, timeout: float = 5.0):
    return StripeProvider(
        secret_key=SECRET_KEY,
        publishable_key=PUBLISHABLE_KEY,
        webhook_secret=webhook_secret,
        api_base=api_base,
        timeout=timeout,
        max_network_retries=0,
    )


@pytest.fixture
def provider(localstripe: LocalStripe) -> StripeProvider:
    return make_provider(localstripe.url)


def pay(provider: StripeProvider, card: str, amount: int = AMOUNT, **kwargs: Any) -> PaymentResult:
    pm = provider.create_test_payment_method(card)
    return provider.create_and_confirm(
        amount=amount,
        currency=kwargs.pop("currency", "KZT"),
        payment_method=pm,
        idempotency_key=kwargs.pop("idempotency_key", f"test-{uuid.uuid4()}"),
        metadata=kwargs.pop("metadata", {"booking": "BK-1"}),
        **kwargs,
    )


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), b"%d." % timestamp + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the harness ------------------------------------------------------------------


def test_harness_binds_loopback_on_a_free_port_and_starts_fast(localstripe: LocalStripe):
    assert localstripe.url.startswith("http://127.0.0.1:")
    started = time.monotonic()
    with LocalStripe() as other:  # a second one alongside shares localstripe's globals
        assert time.monotonic() - started < 2
        assert other.url != localstripe.url
        assert other.url.startswith("http://127.0.0.1:")
    # the module's server still works after the other one stopped
    assert pay(make_provider(localstripe.url), CARD_OK).status == "succeeded"


def test_wait_for_times_out():
    with pytest.raises(TimeoutError):
        wait_for(lambda: False, timeout=0.1)
    assert wait_for(lambda: 42, timeout=0.1) == 42


# -- payments -----------------------------------------------------------------------


def test_successful_payment(provider: StripeProvider):
    result = pay(provider, CARD_OK)
    assert result.status == "succeeded"
    assert result.succeeded
    assert result.intent_id and result.intent_id.startswith("pi_")
    assert result.amount == AMOUNT
    assert result.currency == "kzt"
    assert result.client_secret is None
    assert result.error_code is None
    assert provider.retrieve(result.intent_id) == result


def test_declined_card_is_a_result_not_an_exception(provider: StripeProvider):
    result = pay(provider, CARD_DECLINED)
    assert result.status == "failed"
    assert result.error_code == "card_declined"
    assert result.error_message
    assert result.amount == AMOUNT and result.currency == "kzt"
    # localstripe only names the charge in the error; the provider finds the intent
    assert result.intent_id and result.intent_id.startswith("pi_")
    again = provider.retrieve(result.intent_id)
    assert again.status == "failed"
    assert again.error_code == "card_declined"


def test_3ds_card_requires_action_then_succeeds(provider: StripeProvider):
    result = pay(provider, CARD_3DS)
    assert result.status == "requires_action"
    assert result.needs_action
    assert result.client_secret and result.client_secret.startswith(result.intent_id)
    assert provider.retrieve(result.intent_id).status == "requires_action"

    provider.authenticate_3ds(result.intent_id, result.client_secret, success=True)
    done = provider.retrieve(result.intent_id)
    assert done.status == "succeeded"
    assert done.amount == AMOUNT
    assert done.client_secret is None


def test_3ds_failed_authentication(provider: StripeProvider):
    result = pay(provider, CARD_3DS)
    provider.authenticate_3ds(result.intent_id, result.client_secret, success=False)
    done = provider.retrieve(result.intent_id)
    assert done.status == "failed"
    assert done.error_code == "payment_intent_authentication_failure"


def test_3ds_with_wrong_client_secret_is_refused(provider: StripeProvider):
    result = pay(provider, CARD_3DS)
    with pytest.raises(PaymentError):
        provider.authenticate_3ds(result.intent_id, result.intent_id + "_secret_wrong")
    assert provider.retrieve(result.intent_id).status == "requires_action"


def test_authenticate_3ds_needs_localstripe():
    real = make_provider(None)
    with pytest.raises(PaymentError):
        real.authenticate_3ds("pi_123", "pi_123_secret_x")


def test_partial_refund(provider: StripeProvider):
    payment = pay(provider, CARD_OK)
    first = provider.refund(
        intent_id=payment.intent_id, amount=10_000_000, idempotency_key="refund-1", metadata={"r": "1"}
    )
    assert isinstance(first, RefundResult)
    assert first.refund_id.startswith("re_")
    assert first.status == "succeeded"
    assert first.amount == 10_000_000
    assert first.currency == "kzt"
    rest = provider.refund(
        intent_id=payment.intent_id, amount=AMOUNT - 10_000_000, idempotency_key="refund-2", metadata={}
    )
    assert rest.amount == 25_000_000
    assert rest.refund_id != first.refund_id
    # the payment itself stays "succeeded" (Stripe tracks refunds on the charge)
    assert provider.retrieve(payment.intent_id).status == "succeeded"


def test_refund_of_declined_payment_is_a_payment_error(provider: StripeProvider):
    payment = pay(provider, CARD_DECLINED)
    with pytest.raises(PaymentError) as info:
        provider.refund(intent_id=payment.intent_id, amount=100, idempotency_key="r-x", metadata={})
    assert not isinstance(info.value, ProviderUnavailable)


def test_cancel(provider: StripeProvider):
    pending = pay(provider, CARD_3DS)
    canceled = provider.cancel(pending.intent_id)
    assert canceled.status == "canceled"
    assert canceled.intent_id == pending.intent_id
    assert provider.retrieve(pending.intent_id).status == "canceled"


def test_cancel_succeeded_payment_is_refused(provider: StripeProvider):
    payment = pay(provider, CARD_OK)
    with pytest.raises(PaymentError) as info:
        provider.cancel(payment.intent_id)
    assert not isinstance(info.value, ProviderUnavailable)


def test_unknown_intent_is_a_payment_error(provider: StripeProvider):
    with pytest.raises(PaymentError) as info:
        provider.retrieve("pi_doesnotexist")
    assert not isinstance(info.value, ProviderUnavailable)


def test_bad_arguments_are_caller_bugs(provider: StripeProvider):
    with pytest.raises(ValueError):
        provider.create_and_confirm(
            amount=0, currency="kzt", payment_method="pm_x", idempotency_key="k", metadata={}
        )
    with pytest.raises(ValueError):
        provider.create_and_confirm(
            amount=100, currency="kzt", payment_method="pm_x", idempotency_key="", metadata={}
        )
    with pytest.raises(ValueError):
        provider.retrieve("../v1/customers")


def test_test_payment_methods_refuse_live_keys():
    live = StripeProvider(
        secret_key="sk_live_nope", publishable_key="pk_live_nope", webhook_secret="", api_base=None
    )
    with pytest.raises(PaymentError):
        live.create_test_payment_method(CARD_OK)


# -- webhooks -----------------------------------------------------------------------


def test_signed_webhook_arrives_and_parses(localstripe: LocalStripe, provider: StripeProvider):
    with WebhookRecorder() as recorder:
        localstripe.register_webhook("emhana-test", recorder.url, WEBHOOK_SECRET)
        payment = pay(provider, CARD_OK)

        def arrived():
            for event, headers, body in recorder.events():
                obj = event.get("data", {}).get("object", {})
                if event.get("type") == "payment_intent.succeeded" and obj.get("id") == payment.intent_id:
                    return headers, body
            return None

        headers, body = wait_for(arrived, timeout=10)

    signature = {k.lower(): v for k, v in headers.items()}["stripe-signature"]
    event = provider.parse_webhook(body, signature)
    assert isinstance(event, WebhookEvent)
    assert event.id.startswith("evt_")
    assert event.type == "payment_intent.succeeded"
    assert event.object_id == payment.intent_id
    assert event.object["amount"] == AMOUNT
    assert event.object["currency"] == "kzt"
    assert event.object["metadata"] == {"booking": "BK-1"}

    # tampered body
    tampered = body.replace(str(AMOUNT).encode(), b"1", 1)
    assert tampered != body
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(tampered, signature)
    # wrong secret
    with pytest.raises(InvalidWebhook):
        make_provider(provider._api_base, webhook_secret="whsec_other").parse_webhook(body, signature)
    # no secret configured at all
    with pytest.raises(InvalidWebhook):
        make_provider(provider._api_base, webhook_secret="").parse_webhook(body, signature)


@pytest.mark.parametrize(
    "signature",
    ["", "garbage", "t=notanumber,v1=abc", "v1=abc", "t=1,v0=abc"],
)
def test_malformed_signature_header(provider: StripeProvider, signature: str):
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(b'{"id": "evt_1", "object": "event"}', signature)


def test_stale_webhook_is_rejected(provider: StripeProvider):
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "x", "data": {"object": {}}}).encode()
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(payload, sign(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600))


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b"[1, 2]"])
def test_correctly_signed_garbage_is_rejected(provider: StripeProvider, payload: bytes):
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(payload, sign(payload, WEBHOOK_SECRET))


def test_webhook_we_sign_ourselves_parses(provider: StripeProvider):
    payload = json.dumps(
        {
            "id": "evt_self",
            "object": "event",
            "type": "charge.refunded",
            "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": "pi_1"}},
        }
    ).encode()
    event = provider.parse_webhook(payload, sign(payload, WEBHOOK_SECRET))
    assert (event.id, event.type, event.object_id) == ("evt_self", "charge.refunded", "ch_1")
    assert event.object["payment_intent"] == "pi_1"


# -- provider down, and what only real Stripe sends (via a stub) -------------------


def test_provider_down_is_provider_unavailable_quickly():
    down = make_provider(f"http://127.0.0.1:{closed_port()}", timeout=2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        down.create_and_confirm(
            amount=AMOUNT, currency="kzt", payment_method="pm_x", idempotency_key="k", metadata={}
        )
    with pytest.raises(ProviderUnavailable):
        down.retrieve("pi_123")
    with pytest.raises(ProviderUnavailable):
        down.refund(intent_id="pi_123", amount=1, idempotency_key="k", metadata={})
    with pytest.raises(ProviderUnavailable):
        down.authenticate_3ds("pi_123", "pi_123_secret_x")
    assert time.monotonic() - started < 2


class StubStripe:
    """Answers every request with a canned (status, json) and records the requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.response: tuple[int, dict[str, Any]] = (200, {})
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                stub.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "form": parse_qs(body),
                    }
                )
                status, payload = stub.response
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def stub():
    s = StubStripe()
    yield s
    s.stop()


def _intent(**overrides: Any) -> dict[str, Any]:
    pi = {
        "id": "pi_stub",
        "object": "payment_intent",
        "amount": AMOUNT,
        "currency": "kzt",
        "status": "succeeded",
        "client_secret": "pi_stub_secret_abc",
        "last_payment_error": None,
        "metadata": {},
    }
    pi.update(overrides)
    return pi


def test_request_shape_and_idempotency_keys(stub: StubStripe):
    provider = make_provider(stub.url)
    stub.response = (200, _intent())
    provider.create_and_confirm(
        amount=AMOUNT,
        currency="KZT",
        payment_method="pm_abc",
        idempotency_key="booking-7-attempt-1",
        metadata={"booking": "7"},
        return_url="https://emhana.example/return",
    )
    create = stub.requests[-1]
    assert (create["method"], create["path"]) == ("POST", "/v1/payment_intents")
    assert create["headers"]["idempotency-key"] == "booking-7-attempt-1"
    assert create["headers"]["authorization"] == f"Bearer {SECRET_KEY}"
    form = create["form"]
    assert form["amount"] == [str(AMOUNT)]
    assert form["currency"] == ["kzt"]
    assert form["payment_method"] == ["pm_abc"]
    assert form["confirm"] == ["true"]
    assert form["payment_method_types[0]"] == ["card"]
    assert form["metadata[booking]"] == ["7"]
    # localstripe 400s on these; pointed at an emulator, return_url is left out too
    for forbidden in ("description", "receipt_email", "return_url"):
        assert forbidden not in form
    assert not any(k.startswith("automatic_payment_methods") for k in form)

    stub.response = (
        200,
        {"id": "re_1", "object": "refund", "status": "pending", "amount": 5, "currency": "kzt"},
    )
    result = provider.refund(intent_id="pi_stub", amount=5, idempotency_key="refund-7-1", metadata={})
    assert result == RefundResult("re_1", "pending", 5, "kzt")
    refund = stub.requests[-1]
    assert refund["path"] == "/v1/refunds"
    assert refund["headers"]["idempotency-key"] == "refund-7-1"
    assert refund["form"]["payment_intent"] == ["pi_stub"]


def test_real_stripe_card_error_carries_intent_and_decline_code(stub: StubStripe):
    provider = make_provider(stub.url)
    stub.response = (
        402,
        {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
                "charge": "ch_stub",
                "payment_intent": _intent(status="requires_payment_method"),
            }
        },
    )
    result = provider.create_and_confirm(
        amount=AMOUNT, currency="kzt", payment_method="pm_abc", idempotency_key="k", metadata={}
    )
    assert result == PaymentResult(
        status="failed",
        intent_id="pi_stub",
        amount=AMOUNT,
        currency="kzt",
        error_code="card_declined",
        decline_code="insufficient_funds",
        error_message="Your card has insufficient funds.",
    )
    assert len(stub.requests) == 1  # no charge lookup needed when Stripe names the intent


def test_failed_intent_reports_last_payment_error(stub: StubStripe):
    provider = make_provider(stub.url)
    stub.response = (
        200,
        _intent(
            status="requires_payment_method",
            last_payment_error={
                "code": "card_declined",
                "decline_code": "stolen_card",
                "message": "Declined",
            },
        ),
    )
    result = provider.retrieve("pi_stub")
    assert (result.status, result.error_code, result.decline_code) == (
        "failed",
        "card_declined",
        "stolen_card",
    )
    assert result.client_secret is None


@pytest.mark.parametrize(
    "status, error",
    [
        (500, {"type": "api_error", "message": "boom"}),
        (503, {"type": "api_error", "message": "unavailable"}),
        (429, {"type": "invalid_request_error", "code": "rate_limit", "message": "slow down"}),
    ],
)
def test_server_errors_and_rate_limits_are_provider_unavailable(stub: StubStripe, status, error):
    stub.response = (status, {"error": error})
    with pytest.raises(ProviderUnavailable):
        make_provider(stub.url).retrieve("pi_stub")


@pytest.mark.parametrize(
    "status, error",
    [
        (400, {"type": "invalid_request_error", "code": "amount_too_large", "message": "too much"}),
        (400, {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used..."}),
        (401, {"type": "invalid_request_error", "message": "Invalid API Key provided"}),
    ],
)
def test_client_errors_are_payment_errors(stub: StubStripe, status, error):
    stub.response = (status, {"error": error})
    with pytest.raises(PaymentError) as info:
        make_provider(stub.url).refund(intent_id="pi_stub", amount=1, idempotency_key="k", metadata={})
    assert not isinstance(info.value, ProviderUnavailable)
    assert info.value.code == error.get("code")

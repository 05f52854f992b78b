"""Stripe's webhook endpoint (/payments/stripe/webhook/).

Before anything is parsed or stored the body is checked: at most ``MAX_BODY`` bytes, no NUL, JSON nested at
most ``MAX_DEPTH`` deep (deeper was a RecursionError), an event whose ``id`` and ``type`` fit their columns
and look like Stripe's, and a signature timestamp within ``TOLERANCE`` seconds of now in either direction
(stripe's own check only refuses old ones). Anything else is a 400, never a 500.
"""

import json
import re
import time

from django.db import OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bookings.payments import ProviderUnavailable
from bookings.payments.services import handle_webhook

MAX_BODY = 256 * 1024
MAX_DEPTH = 64
TOLERANCE = 300  # seconds
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,96}")  # WebhookEvent.event_id is a varchar(100)
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+){1,5}")
MAX_TYPE = 100  # WebhookEvent.type is a varchar(100)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _text(note: str, status: int = 400) -> HttpResponse:
    return HttpResponse(note, status=status, content_type="text/plain")


def nesting_deeper_than(body: bytes, limit: int) -> bool:
    """True when the JSON ``body`` opens more than ``limit`` arrays/objects inside each other (strings skipped),
    checked without parsing it, so that the parser never recurses that deep."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', body)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def signed_at(header: str) -> int | None:
    """The ``t=`` timestamp of a ``Stripe-Signature`` header, or None."""
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t":
            value = value.strip()
            return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None
    return None


def refusal(body: bytes, signature: str) -> str | None:
    """Why this webhook request is malformed, or None when it may go on to the signature check."""
    if len(body) > MAX_BODY:
        return "body too large"
    if b"\x00" in body or b"\\u0000" in body.lower():
        return "NUL in body"
    timestamp = signed_at(signature)
    if timestamp is None:
        return "invalid signature"
    if abs(time.time() - timestamp) > TOLERANCE:
        return "signature timestamp outside the tolerance"
    if nesting_deeper_than(body, MAX_DEPTH):
        return "JSON nested too deep"
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        return "invalid JSON"
    if not isinstance(event, dict):
        return "malformed event"
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        return "malformed event id"
    if not isinstance(event_type, str) or len(event_type) > MAX_TYPE or not EVENT_TYPE.fullmatch(event_type):
        return "malformed event type"
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        return "malformed event data"
    return None


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Signature checked on the raw body; 503 on a lock timeout or provider outage so Stripe retries."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _text("invalid content length")
    if length > MAX_BODY:
        return _text("body too large")
    body = request.body
    signature = request.headers.get("Stripe-Signature", "")
    reason = refusal(body, signature)
    if reason:
        return _text(reason)
    try:
        status, note = handle_webhook(body, signature)
    except (OperationalError, ProviderUnavailable):
        return _text("busy", status=503)
    return _text(note, status=status)

"""Booking and paying through the HTTP API, and Stripe-signed webhook events, for the fault tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

from .stack import WEBHOOK_SECRET, Patient, Stack, call, wait_for

CARD_OK, CARD_3DS = "4242424242424242", "4000002500003155"
WEBHOOK_PATH = "/payments/stripe/webhook/"


def book(stack: Stack, patient: Patient, port: int, start: str | None = None) -> dict:
    """Hold a slot and book it (awaiting payment); returns the booking as the API shows it."""
    start = start or stack.next_slot()
    st, _h, body = patient.post(port, "/api/v1/holds", {"offering": stack.offering["id"], "start": start,
                                                         "client_key": uuid.uuid4().hex})
    assert st == 201, body[:500]
    hold = json.loads(body)
    st, _h, body = patient.post(port, "/api/v1/bookings", {"hold": hold["id"]})
    assert st == 201, body[:500]
    booking = json.loads(body)
    assert booking["state"] == "awaiting_payment", booking
    return booking


def pay(stack: Stack, patient: Patient, port: int, booking_id: int, card: str) -> dict:
    pm = stack.payment_method(card)
    st, _h, body = patient.post(port, f"/api/v1/bookings/{booking_id}/payments", {"payment_method": pm})
    assert st == 200, body[:500]
    return json.loads(body)


def booking(patient: Patient, port: int, booking_id: int) -> dict:
    st, _h, body = patient.get(port, f"/api/v1/bookings/{booking_id}")
    assert st == 200, body[:500]
    return json.loads(body)


def intent_of(stack: Stack, payment_id: int) -> str:
    return stack.sql("SELECT intent_id FROM bookings_payment WHERE id = %s", payment_id)[0][0]


def event(event_type: str, intent_id: str, status: str, event_id: str | None = None) -> bytes:
    return json.dumps({
        "id": event_id or f"evt_faults_{uuid.uuid4().hex[:20]}", "object": "event", "type": event_type,
        "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": intent_id, "object": "payment_intent", "status": status}},
    }).encode()


def deliver(port: int, payload: bytes) -> tuple[int, str]:
    """POST an event as Stripe does: signed with the endpoint's secret over ``<timestamp>.<body>``."""
    ts = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    st, _h, body = call(port, "POST", WEBHOOK_PATH, {"Content-Type": "application/json",
                                                     "Stripe-Signature": f"t={ts},v1={mac}"}, payload)
    return st, body.decode(errors="replace")


def confirmation_subject(reference: str) -> str:
    return f"Your booking {reference} is confirmed"


def wait_confirmation(stack: Stack, reference: str, timeout: float = 60) -> list[str]:
    return wait_for(lambda: stack.smtp.subjects(confirmation_subject(reference)), timeout,
                    what=f"the confirmation of {reference} emailed")

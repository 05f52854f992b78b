"""Stripe's webhook under stress, on PostgreSQL with gunicorn processes and Celery workers.

Each case ends with one payment row, at most one confirmation email, and the right final state:
* the same ``payment_intent.succeeded`` event 20 times at once, across two app instances;
* events in reversed order (succeeded first, then the older requires_action and payment_failed);
* a late success for an expired hold whose slot someone else took: refunded, not confirmed, no confirmation;
* the handler failing mid-way (the provider unreachable while it re-reads the intent: 503, the event stored but
  not processed), then the same event delivered again: processed once.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from .payflow import (
    CARD_3DS,
    book,
    booking,
    confirmation_subject,
    deliver,
    event,
    intent_of,
    pay,
    wait_confirmation,
)

pytestmark = pytest.mark.faults


def paid_with_3ds(stack, patient, port):
    """A booking whose payment waits for 3-D Secure, then completed at the bank: the provider says succeeded,
    our database does not know yet — only a webhook will tell it."""
    b = book(stack, patient, port)
    result = pay(stack, patient, port, b["id"], CARD_3DS)
    assert result["state"] == "requires_action" and result["client_secret"], result
    intent = intent_of(stack, result["payment"])
    stack.authenticate_3ds(intent, result["client_secret"])
    assert booking(patient, port, b["id"])["state"] == "awaiting_payment"
    return b, result["payment"], intent


def settled(stack, patient, port, b, timings=None, key="") -> dict:
    now = booking(patient, port, b["id"])
    rows = stack.sql("SELECT count(*) FROM bookings_payment WHERE booking_id = %s", b["id"])[0][0]
    assert rows == 1, f"{rows} payment rows"
    return now


def assert_one_confirmation(stack, b: dict) -> None:
    wait_confirmation(stack, b["reference"])
    time.sleep(1.5)  # a duplicate would come from the other worker within this
    assert len(stack.smtp.subjects(confirmation_subject(b["reference"]))) == 1
    assert stack.sql("SELECT count(*) FROM bookings_notificationlog WHERE key LIKE %s",
                     f"booking:{b['id']}:confirmed%")[0][0] == 1


def test_same_event_twenty_times_at_once(stack, timings):
    a, b_port = stack.web_ports
    patient = stack.patients(1, "wh-dup")[0]
    b, payment, intent = paid_with_3ds(stack, patient, a)
    payload = event("payment_intent.succeeded", intent, "succeeded")
    t0 = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: deliver(stack.web_ports[i % 2], payload), range(20)))
    timings["20_deliveries_s"] = round(time.monotonic() - t0, 2)
    statuses = [st for st, _note in answers]
    assert all(st in (200, 503) for st in statuses), answers  # 503 = "busy, send again" (Stripe retries)
    for st, _note in answers:
        if st == 503:  # as Stripe would: deliver again
            assert deliver(a, payload)[0] == 200
    timings["answers"] = {s: statuses.count(s) for s in set(statuses)}
    now = settled(stack, patient, b_port, b)
    assert now["state"] == "confirmed" and now["payments"][0]["state"] == "succeeded", now
    assert stack.sql("SELECT count(*) FROM bookings_webhookevent WHERE payload->>'id' = %s", intent)[0][0] == 1
    assert_one_confirmation(stack, b)


def test_events_in_reversed_order(stack):
    a, b_port = stack.web_ports
    patient = stack.patients(1, "wh-rev")[0]
    b, payment, intent = paid_with_3ds(stack, patient, a)
    # as created: requires_action, payment_failed (a first try), succeeded; delivered newest first
    created = [event("payment_intent.requires_action", intent, "requires_action"),
               event("payment_intent.payment_failed", intent, "requires_payment_method"),
               event("payment_intent.succeeded", intent, "succeeded")]
    for i, payload in enumerate(reversed(created)):
        st, note = deliver(stack.web_ports[i % 2], payload)
        assert st == 200, note
    now = settled(stack, patient, b_port, b)
    assert now["state"] == "confirmed" and now["payments"][0]["state"] == "succeeded", now
    assert_one_confirmation(stack, b)


def test_late_success_for_an_expired_hold_whose_slot_was_taken(stack):
    a, b_port = stack.web_ports
    late, other = stack.patients(2, "wh-late")
    b, payment, intent = paid_with_3ds(stack, late, a)
    # the time to pay runs out (3-D Secure abandoned for longer than the hold and its grace)
    stack.sql("UPDATE bookings_booking SET payment_due_at = now() - interval '1 minute' WHERE id = %s "
              "RETURNING id", b["id"])
    stack.sql("UPDATE bookings_allocation SET expires_at = now() - interval '1 minute' WHERE appointment_id IN "
              "(SELECT id FROM bookings_appointment WHERE booking_id = %s) RETURNING id", b["id"])
    # someone else takes the slot (the stale hold is released under the resource lock)
    start = b["appointments"][0]["start"]
    taken = book(stack, other, b_port, start=start)
    # then the bank's success arrives
    st, note = deliver(a, event("payment_intent.succeeded", intent, "succeeded"))
    assert st == 200, note
    now = settled(stack, late, b_port, b)
    assert now["state"] in ("expired", "refunded"), now
    pay_row = now["payments"][0]
    assert pay_row["state"] in ("succeeded", "refunded") and pay_row["refunded"] == pay_row["amount"] > 0, now
    assert booking(other, a, taken["id"])["state"] == "awaiting_payment"  # the other patient keeps the slot
    time.sleep(2.0)
    assert stack.smtp.subjects(confirmation_subject(b["reference"])) == []
    assert stack.sql("SELECT count(*) FROM bookings_refund r JOIN bookings_payment p ON p.id = r.payment_id "
                     "WHERE p.booking_id = %s", b["id"])[0][0] == 1


def test_handler_failing_midway_then_redelivered(stack):
    a, b_port = stack.web_ports
    patient = stack.patients(1, "wh-fail")[0]
    b, payment, intent = paid_with_3ds(stack, patient, a)
    payload = event("payment_intent.succeeded", intent, "succeeded")
    stack.stripe_proxy.cut()  # the provider is unreachable while the handler re-reads the intent
    try:
        st, note = deliver(a, payload)
    finally:
        stack.stripe_proxy.restore()
    assert st == 503, note  # Stripe will deliver it again
    stored = stack.sql("SELECT processed_at FROM bookings_webhookevent WHERE payload->>'id' = %s", intent)
    assert len(stored) == 1 and stored[0][0] is None, stored
    assert booking(patient, a, b["id"])["state"] == "awaiting_payment"
    st, note = deliver(b_port, payload)  # the redelivery
    assert st == 200, note
    now = settled(stack, patient, a, b)
    assert now["state"] == "confirmed" and now["payments"][0]["state"] == "succeeded", now
    stored = stack.sql("SELECT processed_at FROM bookings_webhookevent WHERE payload->>'id' = %s", intent)
    assert len(stored) == 1 and stored[0][0] is not None
    assert_one_confirmation(stack, b)
    st, note = deliver(a, payload)  # and once more after it was processed: a no-op
    assert st == 200 and "duplicate" in note

"""Scaling out: two gunicorn instances and two Celery workers on one PostgreSQL and one Redis.

50 signed-in patients race for the same slot, spread across both instances: exactly one holds it, the other 49
get a clean 409 "taken"; the winner books and pays on the other instance, and the confirmation is emailed once
though two workers share the queue.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from .payflow import CARD_OK, confirmation_subject, pay, wait_confirmation
from .stack import HOST

pytestmark = pytest.mark.faults

RACERS = 50


def test_fifty_patients_one_slot_two_instances(stack, timings):
    import http.client

    assert len(stack.webs) == 2 and len(stack.workers) >= 2 and all(w.alive() for w in stack.workers)
    patients = stack.patients(RACERS, "racer")
    start = stack.next_slot()
    results: list = [None] * RACERS
    barrier = threading.Barrier(RACERS + 1)

    def racer(i: int) -> None:
        port = stack.web_ports[i % 2]
        patient = patients[i]
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        body = json.dumps({"offering": stack.offering["id"], "start": start, "client_key": f"race-{i}"})
        try:
            conn.connect()
            barrier.wait()
            conn.request("POST", "/api/v1/holds", body=body, headers={"Host": f"{HOST}:{port}",
                                                                     **patient.headers(port)})
            resp = conn.getresponse()
            data = resp.read()
            results[i] = (resp.status, json.loads(data) if data else {}, port, time.monotonic())
        except Exception as exc:  # noqa: BLE001 - reported below as a failure of this racer
            results[i] = (0, {"error": repr(exc)}, port, time.monotonic())
        finally:
            conn.close()

    threads = [threading.Thread(target=racer, args=(i,), daemon=True) for i in range(RACERS)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(150)
    timings["race_all_answered_s"] = round(max(r[3] for r in results) - t0, 2)
    kinds = Counter((r[0], r[1].get("code", "won" if r[0] == 201 else "?")) for r in results)
    timings["answers"] = dict(kinds)
    winners = [i for i, r in enumerate(results) if r[0] == 201]
    assert len(winners) == 1, dict(kinds)
    assert kinds[(409, "taken")] == RACERS - 1, dict(kinds)
    assert {r[2] for r in results} == set(stack.web_ports)  # both instances took part
    held = stack.sql("SELECT count(*) FROM bookings_appointment WHERE start = %s::timestamptz "
                     "AND status = 'held'", start)[0][0]
    assert held == 1

    # the winner books on the other instance and pays; the confirmation goes out once from two workers
    i = winners[0]
    winner, port = patients[i], stack.web_ports[(i + 1) % 2]
    st, _h, body = winner.post(port, "/api/v1/bookings", {"hold": results[i][1]["id"]})
    assert st == 201, body[:300]
    booking = json.loads(body)
    paid = pay(stack, winner, stack.web_ports[i % 2], booking["id"], CARD_OK)
    assert paid["state"] == "succeeded" and paid["booking_state"] == "confirmed", paid
    t1 = time.monotonic()
    wait_confirmation(stack, booking["reference"])
    timings["confirmation_emailed_s"] = round(time.monotonic() - t1, 2)
    time.sleep(2.0)
    assert len(stack.smtp.subjects(confirmation_subject(booking["reference"]))) == 1
    assert stack.sql("SELECT count(*) FROM bookings_notificationlog WHERE key LIKE %s",
                     f"booking:{booking['id']}:confirmed%")[0][0] == 1

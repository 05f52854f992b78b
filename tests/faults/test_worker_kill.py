"""SIGKILL the Celery worker while it sends confirmations, start it again: each confirmation is sent once.

The confirmations of six paid bookings wait in the queue; a worker starts on them, and when the third email's
delivery has begun (the SMTP server has seen MAIL FROM, nothing accepted yet) the whole worker — main process
and pool — is killed with SIGKILL, as the OOM killer or a lost machine would. A new worker is started. Every
confirmation must arrive exactly once: none lost (the killed delivery must be retried) and none twice.

What it takes (README "Running in production"):
* the task is acknowledged late and re-queued when its worker is lost (``CELERY_TASK_ACKS_LATE``,
  ``CELERY_TASK_REJECT_ON_WORKER_LOST``); with Redis as the broker a message a dead worker had taken comes back
  only after the transport's ``visibility_timeout`` (kombu's default: one hour) — ``CELERY_VISIBILITY_TIMEOUT``
  sets it;
* the "sent" mark (NotificationLog) must be committed only together with the delivery: a mark committed before
  sending, with the worker killed in between, means the retry believes it was sent and the email is lost.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from .payflow import CARD_OK, book, confirmation_subject, pay
from .stack import wait_for

pytestmark = pytest.mark.faults

BOOKINGS = 6
KILL_AT = 3
VISIBILITY_TIMEOUT = 10  # seconds; production: longer than the longest task


def test_worker_killed_mid_send_each_confirmation_once(stack, timings):
    a, b_port = stack.web_ports
    stack.stop_workers()  # the confirmations wait in the queue
    smtp = stack.smtp
    try:
        patients = stack.patients(BOOKINGS, "killed")
        references = []
        for i, patient in enumerate(patients):
            port = stack.web_ports[i % 2]
            b = book(stack, patient, port)
            paid = pay(stack, patient, port, b["id"], CARD_OK)
            assert paid["booking_state"] == "confirmed", paid
            references.append(b["reference"])

        killed = threading.Event()
        victim = {}
        started = smtp.started

        def kill_mid_send(n: int) -> None:
            if n == started + KILL_AT and not killed.is_set():
                victim["worker"].kill_group(signal.SIGKILL)
                killed.set()
                time.sleep(0.2)  # the sender is gone before the server would answer

        smtp.delay = 0.2
        smtp.on_mail = kill_mid_send
        first = stack.start_worker(CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT))
        victim["worker"] = first
        assert killed.wait(90), f"the worker never started sending:\n{first.tail()}"
        t_kill = time.monotonic()
        wait_for(lambda: not first.alive(), 10, what="the killed worker gone")
        smtp.on_mail = None
        sent_before_kill = sum(len(smtp.subjects(confirmation_subject(r))) for r in references)
        timings["sent_before_kill"] = sent_before_kill

        second = stack.start_worker(CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT))
        stack.wait_workers([second])

        def all_sent():
            return all(smtp.subjects(confirmation_subject(r)) for r in references)

        try:
            wait_for(all_sent, VISIBILITY_TIMEOUT + 60, interval=0.25, what="every confirmation delivered")
        except TimeoutError:
            missing = [r for r in references if not smtp.subjects(confirmation_subject(r))]
            pytest.fail(f"confirmations never delivered after the kill: {missing} (of {references}); "
                        f"NotificationLog marks: {stack.sql('SELECT key FROM bookings_notificationlog')}")
        timings["all_delivered_after_kill_s"] = round(time.monotonic() - t_kill, 2)
        time.sleep(2.0)
        counts = {r: len(smtp.subjects(confirmation_subject(r))) for r in references}
        assert all(n == 1 for n in counts.values()), counts
    finally:
        smtp.on_mail = None
        smtp.delay = 0.0
        stack.stop_workers()
        for _ in range(2):
            stack.start_worker()
        stack.wait_workers(stack.workers)

"""Tasks through a real Celery worker on a real broker (CI's PostgreSQL + Redis pass).

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://127.0.0.1:6379/6 \
        pytest tests/bookings/test_worker.py -m worker

The worker is a subprocess on the test database; it writes emails to files we read. A broker that
is configured but down is a failure, not a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bookings.models import Allocation, Appointment, Booking, NotificationLog, OfferingResource
from catalog.models import Offering
from tests.localstripe_server import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

BASE_DIR = Path(settings.BASE_DIR)


@pytest.fixture(scope="module", autouse=True)
def _keep_catalogue(keep_catalogue):
    """The catalogue is there for every test here (tests/conftest.py)."""


def _database_url() -> str:
    s = connection.settings_dict
    auth = quote(s.get("USER") or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}@{host}{port}/{quote(s['NAME'], safe='')}"


def _check_broker(url: str):
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=2, interval_start=0.5, interval_step=0.5)
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same failure
        pytest.fail(f"Celery broker {url} is not reachable: {exc!r}")


@pytest.fixture
def worker(tmp_path):
    broker = os.environ.get("CELERY_BROKER_URL")
    if not broker:  # selected with -m worker (CI's second pass): a missing broker is a failure
        pytest.fail("the worker tests need CELERY_BROKER_URL (a real broker); CI's second pass sets it")
    _check_broker(broker)
    if connection.vendor != "postgresql":
        pytest.fail("the worker test needs PostgreSQL (DATABASE_URL): a worker process cannot see SQLite's "
                    "in-memory test database")
    if settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.fail("CELERY_BROKER_URL must be set before Django settings load (tasks would run eagerly)")

    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    log_path = tmp_path / "worker.log"
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "EMAIL_URL": f"filemail:///{mail_dir}",  # django-environ: filemail:////abs/path
        "DJANGO_SETTINGS_MODULE": "portal.settings.dev",
        "CONN_MAX_AGE": "0",
    })
    hostname = f"emhana-test-{uuid.uuid4().hex[:8]}@%h"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-P", "solo", "-l", "warning", "-n", hostname,
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)

    def tail():
        return log_path.read_text(errors="replace")[-3000:]

    try:
        from portal.celery import app

        name = hostname.replace("%h", __import__("socket").gethostname())

        def ready():
            assert proc.poll() is None, f"worker exited ({proc.returncode}):\n{tail()}"
            return app.control.ping(destination=[name], timeout=0.5)

        try:
            wait_for(ready, timeout=60, interval=0.5)
        except TimeoutError:
            pytest.fail(f"the worker did not come up in 60 s:\n{tail()}")
        yield type("Worker", (), {"mail_dir": mail_dir, "log": staticmethod(tail), "proc": proc})
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _offering() -> Offering:
    return (Offering.objects.filter(resource_links__isnull=False, sessions=1).select_related("clinic", "page")
            .order_by("id").first())


def _booking(user, offering, state, start, **extra) -> Booking:
    booking = Booking.objects.create(user=user, offering=offering, clinic=offering.clinic, state=state,
                                     currency=offering.currency, price=offering.price, deposit=offering.deposit,
                                     service_title=offering.page.title, **extra)
    Appointment.objects.create(booking=booking, offering=offering, start=start,
                               end=start + timedelta(minutes=offering.session_minutes),
                               status=Appointment.BOOKED if state == Booking.CONFIRMED else Appointment.HELD)
    return booking


def _emails(mail_dir: Path, needle: str) -> list[str]:
    found = []
    for path in sorted(mail_dir.glob("*.log")):
        text = path.read_text(errors="replace")
        found.extend(part for part in text.split("-" * 79) if needle in part)
    return found


def test_worker_sends_the_confirmation_once_and_sweeps(worker, patient, django_user_model):
    from bookings.tasks import notify_booking, sweep_expired_holds

    offering = _offering()
    start = timezone.now() + timedelta(days=9)
    booking = _booking(patient, offering, Booking.CONFIRMED, start)
    subject = f"Your booking {booking.reference} is confirmed"

    notify_booking.delay(booking.pk, "confirmed")
    try:
        sent = wait_for(lambda: _emails(worker.mail_dir, subject), timeout=30, interval=0.2)
    except TimeoutError:
        pytest.fail(f"no confirmation email from the worker within 30 s:\n{worker.log()}")
    assert len(sent) == 1
    assert "text/calendar" in sent[0] and patient.email in sent[0]
    assert NotificationLog.objects.filter(key=f"booking:{booking.pk}:confirmed").count() == 1

    # the same task again (a retry, a duplicate delivery): no second email
    notify_booking.delay(booking.pk, "confirmed")

    # an unpaid booking past its due time, swept by the worker (the solo worker runs tasks in order,
    # so once the sweep is done the duplicate notification has been handled too)
    late_user = django_user_model.objects.create_user("late", "late@example.com", "a-long-password-5")
    due = timezone.now() - timedelta(minutes=5)
    unpaid = _booking(late_user, offering, Booking.AWAITING_PAYMENT, start + timedelta(days=1),
                      payment_due_at=due)
    appointment = unpaid.appointments.get()
    resource_id = OfferingResource.objects.filter(offering=offering).values_list("resource_id", flat=True)[0]
    Allocation.objects.create(appointment=appointment, resource_id=resource_id, start=appointment.start,
                              end=appointment.end, expires_at=due)
    sweep_expired_holds.delay()
    try:
        wait_for(lambda: Booking.objects.filter(pk=unpaid.pk, state=Booking.EXPIRED).exists(), timeout=30,
                 interval=0.2)
    except TimeoutError:
        pytest.fail(f"the worker did not sweep within 30 s:\n{worker.log()}")
    assert not Allocation.objects.filter(appointment__booking=unpaid, live=True).exists()
    assert unpaid.events.filter(to_state=Booking.EXPIRED).count() == 1

    time.sleep(0.5)
    assert len(_emails(worker.mail_dir, subject)) == 1
    assert NotificationLog.objects.filter(booking=booking).count() == 1
    # the expiry notice the sweep enqueued is delivered by the worker too
    wait_for(lambda: _emails(worker.mail_dir, f"Booking {unpaid.reference} expired"), timeout=30, interval=0.2)
    assert worker.proc.poll() is None

"""Access matrix: every private URL against every kind of user, and no refused answer leaks a patient's data.

Patient A owns a confirmed booking, one awaiting payment and one quoted, a hold and a medical record attached
to the confirmed booking (clinic X). Patient B is another patient; staff of X and of Y are clinic members with
two-factor authentication; the editor is in Wagtail's Editors group, with two-factor authentication.

A new URL is one line of ``TABLE``. Its path may use ``{confirmed}``, ``{awaiting}``, ``{quoted}`` (references),
``{confirmed_id}``, ``{hold}``, ``{record}``, ``{clinic_x}`` and ``{resource_x}``.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from bookings.engine import holds
from bookings.lifecycle import services as lifecycle
from bookings.models import Booking, ClinicMembership, MedicalRecord, PatientProfile, RecordAccess, Resource
from bookings.patients import records
from catalog.models import ClinicPage
from tests.bookings import conftest as booking_fixtures
from tests.bookings.helpers import book, free_options, pay

pytestmark = pytest.mark.django_db

# The shared booking fixtures (tests/bookings/conftest.py), used here as they are.
offering = booking_fixtures.offering
review_offering = booking_fixtures.review_offering
other_patient = booking_fixtures.other_patient
fake_provider = booking_fixtures.fake_provider
quoted = booking_fixtures.quoted

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")
RECORD_NAME = "leakcheck-mri-report-7q3.pdf"

# --- expectations ----------------------------------------------------------------------------------
OK = "ok"        # 200: the user's own data, or staff of the booking's clinic
OWN = "own"      # 200, but the user's own (empty) page: nothing of patient A's may be in it
LOGIN = "login"  # 302 to the login page
USERS = ("anon", "patient_a", "patient_b", "staff_x", "staff_y", "editor")

# name                path                                              anon   A    B    staff X staff Y editor
TABLE = [
    ("my-dashboard",      "/en/my/",                                        LOGIN, OK, OWN, OWN, OWN, OWN),
    ("my-profile",        "/en/my/profile/",                                LOGIN, OK, OWN, OWN, OWN, OWN),
    ("my-records",        "/en/my/records/",                                LOGIN, OK, OWN, OWN, OWN, OWN),
    ("my-record-file",    "/en/my/records/{record}/",                       LOGIN, OK, 404, OK, 404, 404),
    ("my-booking",        "/en/my/bookings/{confirmed}/",                   LOGIN, OK, 404, 404, 404, 404),
    ("my-checkout",       "/en/my/bookings/{awaiting}/pay/",                LOGIN, OK, 404, 404, 404, 404),
    ("my-dates",          "/en/my/bookings/{quoted}/dates/",                LOGIN, OK, 404, 404, 404, 404),
    ("my-cancel",         "/en/my/bookings/{confirmed}/cancel/",            LOGIN, OK, 404, 404, 404, 404),
    ("my-move",           "/en/my/bookings/{confirmed}/move/",              LOGIN, OK, 404, 404, 404, 404),
    ("my-visa-letter",    "/en/my/bookings/{confirmed}/visa-letter.pdf",    LOGIN, OK, 404, 404, 404, 404),
    ("desk-home",         "/desk/",                                         LOGIN, 403, 403, OK, OWN, 403),
    ("desk-day",          "/desk/clinic/{clinic_x}/day/",                   LOGIN, 403, 403, OK, 404, 403),
    ("desk-queue",        "/desk/clinic/{clinic_x}/queue/",                 LOGIN, 403, 403, OK, 404, 403),
    ("desk-week",         "/desk/resource/{resource_x}/week/",              LOGIN, 403, 403, OK, 404, 403),
    ("desk-hours",        "/desk/resource/{resource_x}/hours/",             LOGIN, 403, 403, OK, 404, 403),
    ("desk-exceptions",   "/desk/resource/{resource_x}/exceptions/",        LOGIN, 403, 403, OK, 404, 403),
    ("desk-booking",      "/desk/booking/{confirmed_id}/",                  LOGIN, 403, 403, OK, 404, 403),
    ("api-booking",       "/api/v1/bookings/{confirmed_id}",                401, OK, 404, 404, 404, 404),
    ("api-hold",          "/api/v1/holds/{hold}",                           401, OK, 404, 404, 404, 404),
    ("api-cancel-quote",  "/api/v1/bookings/{confirmed_id}/cancel",         401, OK, 404, 404, 404, 404),
]

# (name, user) -> reason: a real leak in the application, kept visible until it is fixed.
LEAKS: dict[tuple[str, str], str] = {}


def _cases():
    for name, path, *expected in TABLE:
        assert len(expected) == len(USERS), name
        for user, want in zip(USERS, expected, strict=True):
            marks = []
            if (name, user) in LEAKS:
                marks.append(pytest.mark.xfail(strict=True, reason=f"LEAK: {LEAKS[name, user]}"))
            yield pytest.param(path, user, want, id=f"{name}-{user}", marks=marks)


# --- the world -------------------------------------------------------------------------------------

@pytest.fixture
def private_root(settings, tmp_path, monkeypatch):
    """Private storage in a temporary folder (the field's storage is built at import, so it is replaced)."""
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    settings.MEDIA_ROOT = tmp_path / "media"
    field = MedicalRecord._meta.get_field("file")
    monkeypatch.setattr(field, "storage", FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None))
    return Path(settings.PRIVATE_MEDIA_ROOT)


def with_mfa(user):
    Authenticator.objects.get_or_create(user=user, type=Authenticator.Type.TOTP, defaults={"data": {"secret": "x"}})
    return user


def member_of(django_user_model, clinic, username):
    user = django_user_model.objects.create_user(username, f"{username}@clinic.example", "a-long-password-3")
    ClinicMembership.objects.create(user=user, clinic=clinic)
    return with_mfa(user)


def later_option(offering, days_ahead=lifecycle.RESCHEDULE_MIN_DAYS + 2):
    """A free slot far enough ahead that the booking can still be moved."""
    soon = timezone.now() + timedelta(days=days_ahead)
    return next(o for o in free_options(offering, days=60) if o.start >= soon)


def book_as(client, patient, offering):
    before = set(Booking.objects.filter(user=patient).values_list("pk", flat=True))
    response = book(client, offering, later_option(offering))
    assert response.status_code == 302, response.content.decode()[:2000]
    return Booking.objects.filter(user=patient).exclude(pk__in=before).get()


@pytest.fixture
def world(patient, patient_client, other_patient, offering, quoted, fake_provider, private_root,
          django_user_model):
    confirmed = book_as(patient_client, patient, offering)
    assert pay(patient_client, confirmed).status_code == 200
    confirmed.refresh_from_db()
    assert confirmed.state == Booking.CONFIRMED and lifecycle.can_reschedule(confirmed)
    awaiting = book_as(patient_client, patient, offering)
    assert awaiting.state == Booking.AWAITING_PAYMENT
    assert quoted.state == Booking.QUOTED
    hold = holds.place_hold(patient, offering, later_option(offering).start, uuid.uuid4().hex)
    from bookings.patients import consent

    consent.give(confirmed, patient)  # shared with clinic X, as the upload form asks (issue 10)
    record = records.store_record(patient, SimpleUploadedFile(RECORD_NAME, PDF, content_type="application/pdf"),
                                  booking=confirmed, description="MRI")
    PatientProfile.objects.create(user=patient, given_names="AIGERIM", family_name="SULTANOVA",
                                  date_of_birth=date(1985, 4, 12), citizenship="UZ", passport_number="FA1234567",
                                  passport_expiry=timezone.localdate() + timedelta(days=900))

    clinic_x = confirmed.clinic
    assert awaiting.clinic_id == clinic_x.pk
    resource_x = Resource.objects.filter(clinic=clinic_x).order_by("pk").first()
    clinic_y = (ClinicPage.objects.exclude(pk__in=Booking.objects.filter(user=patient).values("clinic_id"))
                .order_by("pk").first())
    assert clinic_y is not None and resource_x is not None

    editor = django_user_model.objects.create_user("ed", "ed@example.com", "x-long-password-1")
    editor.groups.add(Group.objects.get(name="Editors"))
    users = {
        "anon": None,
        "patient_a": patient,
        "patient_b": other_patient,
        "staff_x": member_of(django_user_model, clinic_x, "coord-x"),
        "staff_y": member_of(django_user_model, clinic_y, "coord-y"),
        "editor": with_mfa(editor),
    }
    ids = {"confirmed": confirmed.reference, "awaiting": awaiting.reference, "quoted": quoted.reference,
           "confirmed_id": confirmed.pk, "hold": hold.pk, "record": record.pk, "clinic_x": clinic_x.pk,
           "resource_x": resource_x.pk}
    secrets = list(dict.fromkeys([patient.email, RECORD_NAME, records.download_name(record),
                                  *Booking.objects.filter(user=patient).values_list("reference", flat=True)]))
    return {"users": users, "ids": ids, "secrets": secrets, "record": record}


def body_of(response) -> str:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return data.decode("utf-8", errors="replace")


# --- the matrix ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "who", "expected"), list(_cases()))
def test_access(world, path, who, expected):
    user = world["users"][who]
    client = Client()
    if user is not None:
        client.force_login(user)
    url = path.format(**world["ids"])
    response = client.get(url)
    body = body_of(response)

    if expected == LOGIN:
        assert response.status_code == 302, (url, response.status_code)
        assert response["Location"].startswith("/en/accounts/login/?next="), response["Location"]
    elif expected in (OK, OWN):
        assert response.status_code == 200, (url, response.status_code, body[:500])
    else:
        assert response.status_code == expected, (url, response.status_code, body[:500])

    if expected != OK:  # refused, or the user's own page: nothing of patient A's in it
        # The page echoes the requested path (language switcher, currency form's "next"): the requester
        # typed that reference, so it is not a leak. Anything else of A's is.
        echo = url.removeprefix("/en") if url.startswith("/en/") else url
        seen = body.replace(echo, "<the requested path>")
        leaked = [s for s in world["secrets"] if s and s in seen]
        assert not leaked, f"{url} as {who} answered {response.status_code} with {leaked}"

    record = world["record"]
    logged = RecordAccess.objects.filter(record=record, user=user).exists() if user else False
    reads_record = path.startswith("/en/my/records/{record}") and expected == OK
    assert logged == reads_record, f"{url} as {who}: record read logged={logged}"

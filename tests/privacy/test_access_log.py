"""The data access log: every read of a record, questionnaire, passport details or visa letter by someone other
than the patient leaves exactly one entry (who, what, when, the real client address, which booking); nobody
can change it; the patient sees it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from bookings.models import Booking, RecordAccess
from bookings.patients import privacy

from .conftest import DIAGNOSIS

pytestmark = pytest.mark.django_db
# one trusted proxy: it appends the address it saw (the client); anything further left was sent by the client
PROXY = {"HTTP_X_FORWARDED_FOR": "203.0.113.250, 198.51.100.23", "REMOTE_ADDR": "10.0.0.2"}


def entries(**filters):
    return list(RecordAccess.objects.filter(**filters))


@pytest.fixture(autouse=True)
def behind_one_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1


def confirm(booking):
    Booking.objects.filter(pk=booking.pk).update(state=Booking.CONFIRMED)
    booking.refresh_from_db()
    return booking


def test_every_path_that_reads_patient_data_leaves_one_entry(staff_client, staff, record, request_booking, patient):
    confirm(request_booking)
    paths = [
        ("record", reverse("record_download", args=[record.pk]), {RecordAccess.RECORD}),
        ("desk booking", reverse("desk:booking", args=[request_booking.pk]),
         {RecordAccess.QUESTIONNAIRE, RecordAccess.PASSPORT}),
        ("visa letter", reverse("desk:visa_letter", args=[request_booking.pk]), {RecordAccess.VISA_LETTER}),
    ]
    for name, url, kinds in paths:
        before = RecordAccess.objects.count()
        response = staff_client.get(url, **PROXY)
        assert response.status_code == 200, (name, response.status_code)
        if response.streaming:
            b"".join(response.streaming_content)
        new = list(RecordAccess.objects.order_by("-id")[: RecordAccess.objects.count() - before])
        assert sorted(e.kind for e in new) == sorted(kinds), name
        for entry in new:
            assert entry.user == staff and entry.patient == patient and entry.booking_id == request_booking.pk
            assert entry.ip == "198.51.100.23", "the client behind the proxy, not the proxy"
    page = staff_client.get(reverse("desk:booking", args=[request_booking.pk])).content.decode()
    assert DIAGNOSIS in page


def test_the_patient_sees_who_opened_their_data_and_not_their_own_reads(patient_client, staff_client, staff, record,
                                                                         request_booking):
    patient_client.get(reverse("record_download", args=[record.pk]))
    staff_client.get(reverse("desk:booking", args=[request_booking.pk]), **PROXY)
    page = patient_client.get(reverse("patient_privacy"))
    assert page.status_code == 200
    log = list(page.context["accesses"])
    assert {e.kind for e in log} == {RecordAccess.QUESTIONNAIRE, RecordAccess.PASSPORT}
    assert all(e.user == staff for e in log)
    body = page.content.decode()
    assert staff.email in body and "198.51.100.23" in body and request_booking.reference in body


def test_another_patients_reads_are_not_shown(patient_client, django_user_model, staff, request_booking):
    other = django_user_model.objects.create_user("someone", "someone@example.com", "a-long-password-9")
    privacy.log_access(staff, RecordAccess.QUESTIONNAIRE, patient_id=other.pk)
    assert list(patient_client.get(reverse("patient_privacy")).context["accesses"]) == []


def test_the_log_refuses_changes_and_deletion_through_the_model(staff, record, request_booking):
    entry = privacy.log_access(staff, RecordAccess.QUESTIONNAIRE, patient_id=request_booking.user_id,
                               booking=request_booking, ip="203.0.113.5")
    entry.ip = "203.0.113.99"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        RecordAccess.objects.filter(pk=entry.pk).update(ip="203.0.113.99")
    with pytest.raises(PermissionError):
        RecordAccess.objects.filter(pk=entry.pk).delete()
    assert RecordAccess.objects.get(pk=entry.pk).ip == "203.0.113.5"


def test_the_log_cannot_be_changed_or_deleted_in_the_django_admin(client, staff, request_booking):
    admin_user = get_user_model().objects.create_superuser("root-privacy", "root.privacy@example.com", "x-pass-12345")
    from .conftest import with_mfa

    with_mfa(admin_user)
    client.force_login(admin_user)
    entry = privacy.log_access(staff, RecordAccess.QUESTIONNAIRE, patient_id=request_booking.user_id,
                               booking=request_booking, ip="203.0.113.5")
    change = reverse("admin:bookings_recordaccess_change", args=[entry.pk])
    response = client.get(change)
    assert response.status_code == 200 and b'name="ip"' not in response.content  # shown, read-only
    assert client.post(change, {"ip": "203.0.113.99"}).status_code == 403
    assert client.post(reverse("admin:bookings_recordaccess_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    changelist = client.post(reverse("admin:bookings_recordaccess_changelist"),
                             {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert changelist.status_code in (200, 302)
    assert client.get(reverse("admin:bookings_recordaccess_add")).status_code == 403
    assert RecordAccess.objects.filter(pk=entry.pk, ip="203.0.113.5").exists()


def test_no_desk_or_patient_url_writes_to_the_log_other_than_by_adding():
    from django.urls import get_resolver

    names = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, prefix + str(p.pattern))
            else:
                names.append(prefix + str(p.pattern))

    walk(get_resolver().url_patterns)
    for route in names:
        assert not any(word in route.lower() for word in ("access-log", "accesslog", "recordaccess")) or \
            route.startswith(("django-admin", "^django-admin")), route


def test_the_admin_shows_no_health_data_and_no_restricted_booking(client, request_booking):
    admin_user = get_user_model().objects.create_superuser("root-2", "root2@example.com", "x-pass-12345")
    from .conftest import with_mfa

    with_mfa(admin_user)
    client.force_login(admin_user)
    page = client.get(reverse("admin:bookings_booking_change", args=[request_booking.pk])).content.decode()
    assert "Glomus" not in page and "Prefer May" not in page


def test_log_access_skips_the_patient_themself(patient):
    assert privacy.log_access(patient, RecordAccess.QUESTIONNAIRE, patient_id=patient.pk) is None

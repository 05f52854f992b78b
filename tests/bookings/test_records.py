"""Medical records: only real PDFs, pictures and DICOM get in, they stay private, and every read is logged."""

import hashlib
import re
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import translation

from bookings.models import Booking, ClinicMembership, MedicalRecord, RecordAccess
from bookings.patients import records

from .helpers import PDF, dicom_bytes, jpeg_bytes, make_zip, png_bytes, stored_files, upload

pytestmark = pytest.mark.django_db

# --- sample files ----------------------------------------------------------------------------------

# --- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _english():
    """Requests activate their URL's language in this thread; start each test from English again."""
    translation.activate("en")
    yield
    translation.activate("en")

DEMO = "@emhana.example"  # load_demo's patients have records and reads of their own (issue 10)


@pytest.fixture
def offering():
    from catalog.models import Offering

    offering = Offering.objects.filter(kind=Offering.TREATMENT).select_related("clinic", "page").order_by("id").first()
    assert offering is not None, "the catalogue is loaded by tests/conftest.py"
    return offering


def make_booking(user, offering):
    return Booking.objects.create(user=user, offering=offering, clinic=offering.clinic, price=offering.price,
                                  deposit=offering.deposit, service_title=offering.page.title)


@pytest.fixture
def booking(patient, offering):
    from bookings.patients import consent

    booking = make_booking(patient, offering)
    consent.give(booking, patient)  # the patient agreed to share this booking's records with its clinic
    return booking


@pytest.fixture
def other_patient(django_user_model):
    return django_user_model.objects.create_user("other-pat", "other.patient@example.com", "a-long-password-2")


def staff_of(django_user_model, clinic, username, mfa=True):
    from bookings.demo.mfa import activate_demo_totp

    user = django_user_model.objects.create_user(username, f"{username}@clinic.example", "a-long-password-3")
    ClinicMembership.objects.create(user=user, clinic=clinic)
    if mfa:
        activate_demo_totp(user)
    return user


# --- accepted uploads ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, data, expected", [
    ("discharge summary.pdf", PDF, "application/pdf"),
    ("scan.png", png_bytes(), "image/png"),
    ("photo.jpg", jpeg_bytes(), "image/jpeg"),
    ("IM000001", dicom_bytes(), "application/dicom"),
    ("mri.zip", make_zip([("DICOMDIR", dicom_bytes(b"\x09")), ("DICOM/IM1", dicom_bytes(b"\x02")),
                          ("DICOM/IM2", dicom_bytes(b"\x03"))]), "application/zip"),
])
def test_real_files_are_accepted_checksummed_and_kept_outside_media(patient, private_root, settings, name, data,
                                                                     expected):
    record = records.store_record(patient, upload(name, data), description="MRI")

    record.refresh_from_db()
    assert record.content_type == expected
    assert record.size == len(data)
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert record.original_name == name
    path = Path(record.file.path).resolve()
    assert path.is_relative_to(private_root.resolve())
    assert not path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert path.read_bytes() == data
    # the stored name comes from us (owner id and record uuid), never from the patient
    assert record.file.name == f"records/{patient.pk}/{record.pk}"


def test_private_storage_is_configured_outside_media_root(settings):
    location = Path(MedicalRecord._meta.get_field("file").storage.location).resolve()
    assert not location.is_relative_to(Path(settings.MEDIA_ROOT).resolve())


def test_the_type_is_sniffed_not_taken_from_the_name_or_the_browser(patient, private_root):
    record = records.store_record(patient, upload("report.txt", PDF, content_type="text/plain"))
    assert record.content_type == "application/pdf"


def test_upload_page_accepts_a_file_and_lists_it(patient_client, patient, booking, private_root):
    response = patient_client.post(reverse("patient_records"), {
        "file": upload("discharge.pdf", PDF, "application/pdf"), "booking": booking.pk, "description": "Summary"})
    assert response.status_code == 302
    record = MedicalRecord.objects.get(owner=patient)
    assert record.booking == booking and record.description == "Summary"
    page = patient_client.get(reverse("patient_records"))
    assert page.status_code == 200
    assert "discharge.pdf" in page.content.decode()
    assert reverse("record_download", args=[record.pk]) in page.content.decode()


# --- refused uploads -------------------------------------------------------------------------------

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00" + b"\x00" * 200
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


@pytest.mark.parametrize("name, data, content_type, message", [
    ("invoice.pdf", EXE, "application/pdf", "cannot accept this type of file"),
    ("x-ray.png", HTML, "image/png", "cannot accept this type of file"),
    ("empty.pdf", b"", "application/pdf", "file is empty"),
    ("scans.zip", make_zip([("../../etc/evil", dicom_bytes())]), "application/zip", "unsafe name"),
    ("scans.zip", make_zip([("/abs/IM1", dicom_bytes())]), "application/zip", "unsafe name"),
    ("scans.zip", make_zip([("DICOM/IM1", dicom_bytes()), ("viewer.exe", EXE)]), "application/zip",
     "not a DICOM file"),
    ("scans.zip", make_zip([("DICOM/", b"")]), "application/zip", "ZIP file is empty"),
    ("scans.zip", b"PK\x03\x04" + b"\x00" * 300, "application/zip", "damaged or incomplete"),
    ("letter.docx", make_zip([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")]),
     "application/pdf", "cannot accept this type of file"),
])
def test_bad_files_are_refused_with_a_clear_message_and_nothing_is_saved(patient, private_root, name, data,
                                                                         content_type, message):
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload(name, data, content_type))
    assert message in refused.value.message
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists()
    assert stored_files(private_root) == []


def test_oversize_file_is_refused(patient, private_root, settings):
    settings.RECORD_MAX_BYTES = 1000
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("big.pdf", PDF + b"%" * 2000))
    assert "larger than" in refused.value.message
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists() and stored_files(private_root) == []


def test_zip_bomb_is_refused_before_it_is_unpacked(patient, private_root, settings):
    settings.RECORD_MAX_BYTES = 10_000
    bomb = make_zip([("DICOM/IM1", dicom_bytes() + b"\x00" * (20 * 10_000 + 1))])
    assert len(bomb) < settings.RECORD_MAX_BYTES  # small on the wire, huge unpacked
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("scans.zip", bomb))
    assert "would unpack to more than" in refused.value.message
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists()


def test_zip_with_too_many_entries_is_refused(patient, private_root, settings):
    settings.RECORD_ZIP_MAX_ENTRIES = 3
    archive = make_zip([(f"DICOM/IM{i}", dicom_bytes()) for i in range(4)])
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("scans.zip", archive))
    assert "more than 3 files" in refused.value.message


def test_zip_entry_with_a_corrupted_body_is_refused(patient, private_root):
    good = bytearray(make_zip([("DICOM/IM1", dicom_bytes() + bytes(range(256)) * 4)], zipfile.ZIP_STORED))
    good[200] ^= 0xFF  # flip a byte inside the stored data: the CRC no longer matches
    with pytest.raises(records.RecordRejected):
        records.store_record(patient, upload("scans.zip", bytes(good)))
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists()


def test_booking_must_be_the_patients_own(patient, other_patient, offering, private_root):
    foreign = make_booking(other_patient, offering)
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("a.pdf", PDF), booking=foreign)
    assert "your own bookings" in refused.value.message
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists()


def test_upload_page_shows_the_refusal_next_to_the_file_field(patient_client, private_root):
    response = patient_client.post(reverse("patient_records"), {"file": upload("invoice.pdf", EXE, "application/pdf")})
    assert response.status_code == 200
    errors = response.context["form"].errors["file"]
    assert any("cannot accept this type of file" in e for e in errors)
    assert 'class="errorlist' in response.content.decode()
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists()


def test_upload_page_refuses_an_empty_file(patient_client, private_root):
    response = patient_client.post(reverse("patient_records"), {"file": upload("empty.pdf", b"")})
    assert response.status_code == 200
    assert any("file is empty" in e for e in response.context["form"].errors["file"])
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists()


def test_upload_page_offers_only_the_patients_own_bookings(patient_client, other_patient, offering, private_root):
    foreign = make_booking(other_patient, offering)
    response = patient_client.post(reverse("patient_records"), {"file": upload("a.pdf", PDF), "booking": foreign.pk})
    assert response.status_code == 200
    assert "booking" in response.context["form"].errors
    assert not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists()


def test_refusals_are_in_the_patients_language(patient_client, private_root):
    response = patient_client.post("/ru/my/records/", {"file": upload("invoice.pdf", EXE, "application/pdf")})
    error = response.context["form"].errors["file"][0]
    assert re.search("[А-Яа-яЁё]", error), error


# --- reading: who may, and the log -----------------------------------------------------------------

@pytest.fixture
def record(patient, booking, private_root):
    return records.store_record(patient, upload("résumé médical.pdf", PDF), booking=booking)


def test_owner_downloads_with_safe_headers_and_the_read_is_logged(patient_client, patient, record):
    response = patient_client.get(reverse("record_download", args=[record.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=utf-8''r%C3%A9sum%C3%A9%20m%C3%A9dical.pdf" in disposition
    access = RecordAccess.objects.get(record=record)
    assert (access.user, access.action, access.ip) == (patient, "download", "127.0.0.1")


def test_another_patient_gets_404_and_nothing_is_logged(client, other_patient, record):
    client.force_login(other_patient)
    assert client.get(reverse("record_download", args=[record.pk])).status_code == 404
    assert not RecordAccess.objects.exclude(patient__email__endswith=DEMO).exists()


def test_unknown_record_is_404_like_a_forbidden_one(patient_client):
    import uuid

    assert patient_client.get(reverse("record_download", args=[uuid.uuid4()])).status_code == 404


def test_staff_of_the_bookings_clinic_can_download(client, django_user_model, record, booking):
    staff = staff_of(django_user_model, booking.clinic, "coord-a")
    client.force_login(staff)
    response = client.get(reverse("record_download", args=[record.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert RecordAccess.objects.filter(record=record, user=staff, action="download").count() == 1
    assert list(records.records_for_clinic_staff(staff, booking)) == [record]


def test_staff_without_two_factor_are_sent_to_set_it_up_first(client, django_user_model, record, booking):
    staff = staff_of(django_user_model, booking.clinic, "coord-nomfa", mfa=False)
    client.force_login(staff)
    response = client.get(reverse("record_download", args=[record.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    assert not RecordAccess.objects.exclude(patient__email__endswith=DEMO).exists()
    with pytest.raises(records.RecordUnavailable):
        records.read_record(staff, record)


def test_staff_of_another_clinic_get_404(client, django_user_model, record, booking):
    from catalog.models import ClinicPage

    other_clinic = ClinicPage.objects.exclude(pk=booking.clinic_id).first()
    assert other_clinic is not None
    staff = staff_of(django_user_model, other_clinic, "coord-b")
    client.force_login(staff)
    assert client.get(reverse("record_download", args=[record.pk])).status_code == 404
    assert not RecordAccess.objects.exclude(patient__email__endswith=DEMO).exists()
    assert list(records.records_for_clinic_staff(staff, booking)) == []


def test_clinic_staff_cannot_read_a_record_not_attached_to_a_booking(django_user_model, patient, booking,
                                                                    private_root):
    loose = records.store_record(patient, upload("a.pdf", PDF))
    staff = staff_of(django_user_model, booking.clinic, "coord-c")
    assert records.can_read(staff, loose) is False
    assert records.can_read(patient, loose) is True


def test_anonymous_visitor_is_sent_to_sign_in(client, record):
    url = reverse("record_download", args=[record.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert not RecordAccess.objects.exclude(patient__email__endswith=DEMO).exists()


def test_access_log_is_read_only_in_django_admin(rf, django_user_model, record, patient):
    from django.contrib import admin

    import bookings.patients.admin  # noqa: F401  (registers the read-only admins)

    root = django_user_model.objects.create_superuser("root", "root@example.com", "a-long-password-4")
    request = rf.get("/django-admin/")
    request.user = root
    access = RecordAccess.objects.create(record=record, user=patient)
    for model in (RecordAccess, MedicalRecord):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, access if model is RecordAccess else record)
        assert not model_admin.has_delete_permission(request, access if model is RecordAccess else record)


def test_behind_the_proxy_the_access_log_names_the_real_client(patient_client, record, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    patient_client.get(reverse("record_download", args=[record.pk]), REMOTE_ADDR="10.0.0.5",
                       HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert RecordAccess.objects.get(record=record).ip == "203.0.113.7"
    settings.TRUSTED_PROXY_COUNT = 0  # no proxy trusted: a forged header is ignored
    patient_client.get(reverse("record_download", args=[record.pk]), REMOTE_ADDR="198.51.100.9",
                       HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert RecordAccess.objects.order_by("-at", "-pk").first().ip == "198.51.100.9"

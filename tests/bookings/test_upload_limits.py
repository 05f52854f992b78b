"""Limits on medical-record uploads: ZIP bombs are refused in bounded time, each patient has an upload rate
and a storage quota, and downloads are named and typed from what the file is, not from its uploaded name."""

from __future__ import annotations

import re
import struct
import time
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.urls import reverse

from bookings.models import Booking, MedicalRecord
from bookings.patients import records
from portal.ratelimit import parse

from .helpers import PDF, QUESTIONNAIRE, dicom_bytes, jpeg_bytes, make_zip, png_bytes, stored_files, upload

pytestmark = pytest.mark.django_db

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00" + b"\x00" * 200
DICOM_HEAD = b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\xc8\x00\x00\x00"
MIB = 1024 * 1024

DEMO = "@emhana.example"  # load_demo's patients have records and reads of their own (issue 10)


# --- hand-made archives (what an attacker sends, not what zipfile would write) ---------------------

def zeros_member(mebibytes: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of a DICOM header followed by ``mebibytes`` MiB of zeros, built without
    compressing every byte: after a full flush the compressor starts afresh, so one compressed MiB of
    zeros is repeated. Returns (compressed, crc32, uncompressed size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(DICOM_HEAD) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH) == block
    tail = compressor.flush()
    crc = zlib.crc32(DICOM_HEAD)
    zeros = bytes(MIB)
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    return head + block * mebibytes + tail, crc, len(DICOM_HEAD) + mebibytes * MIB


def raw_zip(members, declared_entries=None):
    """A ZIP from (name, compressed data, crc, size the central directory declares) tuples."""
    body, directory = b"", b""
    for name, data, crc, declared in members:
        name = name.encode()
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), declared, len(name), 0)
        body += name + data
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), declared,
                                 len(name), 0, 0, 0, 0, 0, offset) + name
    count = len(members) if declared_entries is None else declared_entries
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    return body + directory + end


def many_entries_zip(entries: int, declared_entries: int) -> bytes:
    """One small local entry and a central directory listing it ``entries`` times (a few MB on the wire)."""
    name = b"a"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    one = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0, 0, 0, 0, 0, 0) + name
    directory = one * entries
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, declared_entries, declared_entries, len(directory),
                      len(local), 0)
    return local + directory + end


# --- fixtures --------------------------------------------------------------------------------------

def nothing_stored(root: Path) -> bool:
    return not MedicalRecord.objects.exclude(owner__email__endswith=DEMO).exists() and stored_files(root) == []


def refusal(response) -> str:
    assert response.status_code == 200
    return " ".join(response.context["form"].errors.get("file", []))


# --- 1. ZIP bombs ----------------------------------------------------------------------------------

def test_the_attack_zip_bomb_is_refused_quickly_and_nothing_is_stored(patient_client, private_root):
    """The attack run's archive: under a megabyte on the wire, 900 MiB of zeros unpacked."""
    data, crc, size = zeros_member(900)
    bomb = raw_zip([("DICOM/IM1", data, crc, size)])
    assert len(bomb) < MIB and size > records.zip_max_total(len(bomb))

    started = time.monotonic()
    response = patient_client.post(reverse("patient_records"), {"file": upload("scans.zip", bomb)})
    elapsed = time.monotonic() - started

    assert "would unpack to more than" in refusal(response)
    assert elapsed < records.zip_max_seconds(), elapsed
    assert nothing_stored(private_root)


def test_a_bomb_whose_directory_understates_its_sizes_is_refused_quickly(patient, private_root):
    """The central directory says each entry is small; the data unpacks to hundreds of MiB."""
    data, crc, size = zeros_member(300)
    bomb = raw_zip([(f"DICOM/IM{i}", data, crc, 4096) for i in range(3)])
    assert 3 * size > records.zip_max_total(len(bomb))

    started = time.monotonic()
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("scans.zip", bomb))
    elapsed = time.monotonic() - started

    assert "ZIP" in refused.value.message
    assert elapsed < records.zip_max_seconds(), elapsed
    assert nothing_stored(private_root)


def test_a_bomb_of_many_honest_entries_is_refused_past_the_byte_budget(patient, private_root):
    """Each entry declares its true, modest size; together they unpack past any budget."""
    data, crc, size = zeros_member(8)
    count = records.zip_max_total() // size + 1
    bomb = raw_zip([(f"DICOM/IM{i}", data, crc, size) for i in range(count)])
    assert len(bomb) < MIB
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("scans.zip", bomb))
    assert "would unpack to more than" in refused.value.message
    assert nothing_stored(private_root)


def test_checking_a_zip_stops_at_the_time_budget(patient, private_root, settings):
    settings.RECORD_ZIP_MAX_SECONDS = 0
    archive = make_zip([(f"DICOM/IM{i}", dicom_bytes() + bytes(MIB)) for i in range(5)])
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("scans.zip", archive))
    assert "takes too long to check" in refused.value.message
    assert nothing_stored(private_root)


@pytest.mark.parametrize("declared", ["honestly", "as one"])
def test_a_zip_listing_too_many_entries_is_refused_before_they_are_parsed(patient, private_root, declared):
    entries = 40 * records.zip_max_entries()  # zipfile alone would take seconds to list them
    archive = many_entries_zip(entries, declared_entries=min(entries, 0xFFFF) if declared == "honestly" else 1)
    started = time.monotonic()
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("scans.zip", archive))
    elapsed = time.monotonic() - started
    assert f"more than {records.zip_max_entries()} files" in refused.value.message
    assert elapsed < records.zip_max_seconds(), elapsed
    assert nothing_stored(private_root)


def test_a_second_zip_of_the_same_patient_waits_for_the_first_to_be_checked(patient, other_patient, private_root,
                                                                            monkeypatch):
    archive = make_zip([("DICOM/IM1", dicom_bytes())])
    check = records.check_zip
    during = {}

    def check_while_another_arrives(fileobj, size=None):
        for who in (patient, other_patient):
            try:
                records.store_record(who, upload("second.zip", archive))
                during[who.pk] = "stored"
            except records.RecordRejected as exc:
                during[who.pk] = exc.message
        return check(fileobj, size)

    monkeypatch.setattr(records, "check_zip", check_while_another_arrives)
    first = records.store_record(patient, upload("first.zip", archive))
    assert "still being checked" in during[patient.pk]
    assert during[other_patient.pk] == "stored"  # other patients are not held up
    assert list(MedicalRecord.objects.filter(owner=patient)) == [first]
    monkeypatch.setattr(records, "check_zip", check)
    records.store_record(patient, upload("third.zip", archive))  # and the next one goes through
    assert MedicalRecord.objects.filter(owner=patient).count() == 2


# --- 2. upload rate and quota ----------------------------------------------------------------------

def test_uploads_per_patient_are_limited_per_hour(patient_client, patient, other_patient, private_root):
    limit, _ = parse(records.upload_rate())
    for i in range(limit):
        response = patient_client.post(reverse("patient_records"), {"file": upload(f"page{i}.pdf", PDF)})
        assert response.status_code == 302, refusal(response)

    response = patient_client.post(reverse("patient_records"), {"file": upload("one-more.pdf", PDF)})
    assert "too many files" in refusal(response)
    assert MedicalRecord.objects.filter(owner=patient).count() == limit
    assert len(stored_files(private_root)) == limit
    assert "one-more.pdf" not in patient_client.get(reverse("patient_records")).content.decode()
    # another patient has their own allowance
    records.store_record(other_patient, upload("theirs.pdf", PDF))


def test_refused_files_use_up_the_upload_rate_too(patient_client, patient, private_root, settings):
    settings.RECORD_UPLOAD_RATE = "2/h"
    for _ in range(2):
        assert "cannot accept this type" in refusal(
            patient_client.post(reverse("patient_records"), {"file": upload("x.pdf", EXE)}))
    assert "too many files" in refusal(patient_client.post(reverse("patient_records"), {"file": upload("a.pdf", PDF)}))
    assert nothing_stored(private_root)


def test_the_request_form_stops_at_the_upload_rate_and_creates_nothing(patient_client, patient, review_offering,
                                                                       private_root, settings):
    settings.RECORD_UPLOAD_RATE = "1/h"
    response = patient_client.post(reverse("request_treatment", args=[review_offering.pk]), {
        **QUESTIONNAIRE, "consent": "1", "records": [upload("one.pdf", PDF), upload("two.pdf", PDF)]})
    assert response.status_code == 400
    assert any("too many files" in e for e in response.context["form"].errors["records"])
    assert not Booking.objects.filter(user=patient).exists()
    assert nothing_stored(private_root)


def seed_usage(owner, size):
    """Files the patient already keeps (only their sizes matter here)."""
    return MedicalRecord.objects.create(owner=owner, file=f"records/{owner.pk}/earlier", original_name="earlier.pdf",
                                        content_type=records.PDF, size=size, sha256="0" * 64)


def test_a_file_that_would_pass_the_quota_is_refused_and_nothing_is_stored(patient_client, patient, private_root):
    earlier = seed_usage(patient, records.upload_quota() - len(PDF) + 1)
    response = patient_client.post(reverse("patient_records"), {"file": upload("one-too-many.pdf", PDF)})
    message = refusal(response)
    assert "not enough room" in message
    assert list(MedicalRecord.objects.filter(owner=patient)) == [earlier]
    assert stored_files(private_root) == []


def test_a_file_that_just_fits_the_quota_is_kept_and_other_patients_usage_does_not_count(
        patient, other_patient, private_root):
    seed_usage(other_patient, records.upload_quota())
    seed_usage(patient, records.upload_quota() - len(PDF))
    record = records.store_record(patient, upload("last.pdf", PDF))
    assert Path(record.file.path).read_bytes() == PDF
    assert records.stored_bytes(patient) == records.upload_quota()
    with pytest.raises(records.RecordRejected) as refused:
        records.store_record(patient, upload("after.pdf", PDF))
    assert "not enough room" in refused.value.message


# --- 3. downloads are named and typed from the content ---------------------------------------------

def download_filename(response) -> str:
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;"), disposition
    encoded = re.search(r"filename\*=utf-8''(\S+)", disposition)
    if encoded:
        return unquote(encoded.group(1))
    return re.search(r'filename="((?:[^"\\]|\\.)*)"', disposition).group(1).replace('\\"', '"')


@pytest.mark.parametrize("uploaded_as, data, served_as, content_type", [
    ("report.html", PDF, "report.pdf", "application/pdf"),
    ("x-ray.PNG.exe", png_bytes(), "x-ray.PNG.png", "image/png"),
    ("holiday photo.jpeg", jpeg_bytes(), "holiday photo.jpeg", "image/jpeg"),
    ("IM000001", dicom_bytes(), "IM000001.dcm", "application/dicom"),
    ("study.docx", make_zip([("DICOM/IM1", dicom_bytes())]), "study.zip", "application/zip"),
    ('scan"<1>|2.svg', PDF, "scan__1__2.pdf", "application/pdf"),
    ("invoice\u202egpj.exe", PDF, "invoicegpj.pdf", "application/pdf"),  # right-to-left override removed
    ("результат МРТ.htm", PDF, "результат МРТ.pdf", "application/pdf"),
    ("CON.html", PDF, "CON_.pdf", "application/pdf"),
], ids=["html-that-is-pdf", "exe-that-is-png", "jpeg-kept", "dicom-without-extension", "docx-that-is-zip",
        "unsafe-characters", "right-to-left-override", "cyrillic", "windows-device-name"])
def test_download_is_named_and_typed_from_the_content(patient_client, patient, private_root, uploaded_as, data,
                                                      served_as, content_type):
    record = records.store_record(patient, upload(uploaded_as, data, "text/html"))
    response = patient_client.get(reverse("record_download", args=[record.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert download_filename(response) == served_as
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_record_of_an_unknown_type_is_served_as_opaque_bytes(patient_client, patient, private_root):
    record = records.store_record(patient, upload("page.html", PDF))
    MedicalRecord.objects.filter(pk=record.pk).update(content_type="text/html")  # e.g. a row from before the checks
    response = patient_client.get(reverse("record_download", args=[record.pk]))
    assert response["Content-Type"] == "application/octet-stream"
    assert download_filename(response) == "page.bin"
    assert response["X-Content-Type-Options"] == "nosniff"

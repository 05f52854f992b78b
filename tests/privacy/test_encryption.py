"""Encryption at rest: what the database and the disk hold, what a wrong key does, and key rotation."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.db import connection

from bookings.lifecycle import services as lifecycle
from bookings.models import Booking, Companion, MedicalRecord, Message, PatientProfile, Quote
from bookings.patients import crypto, rotation

from .conftest import COMPANION_PASSPORT, DIAGNOSIS, FILE_CONTENT, PASSPORT

pytestmark = pytest.mark.django_db


def raw(table, column, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def test_the_database_holds_no_readable_passport_birth_date_or_diagnosis(request_booking, profile, patient):
    lifecycle.post_message(request_booking, patient, "My diagnosis: " + DIAGNOSIS, from_clinic=False)
    companion = Companion.objects.get(profile=profile)
    message = Message.objects.get(booking=request_booking)
    stored = [
        raw("bookings_patientprofile", "passport_number", profile.pk),
        raw("bookings_patientprofile", "date_of_birth", profile.pk),
        raw("bookings_companion", "passport_number", companion.pk),
        raw("bookings_companion", "date_of_birth", companion.pk),
        raw("bookings_booking", "questionnaire", request_booking.pk),
        raw("bookings_booking", "request_note", request_booking.pk),
        raw("bookings_message", "body", message.pk),
    ]
    for value in stored:
        assert value.startswith("enc:v1:"), value
    everything = " ".join(stored)
    for secret in (PASSPORT, COMPANION_PASSPORT, "1971-05-17", "1971", "Glomus", "Prefer May", "tinnitus"):
        assert secret not in everything
    # …and the application reads them back as they were entered
    profile = PatientProfile.objects.get(pk=profile.pk)
    assert profile.passport_number == PASSPORT and profile.date_of_birth.isoformat() == "1971-05-17"
    assert Booking.objects.get(pk=request_booking.pk).questionnaire["diagnosis"] == DIAGNOSIS
    assert Message.objects.get(pk=message.pk).body.endswith(DIAGNOSIS)


def test_the_clinicians_treatment_plan_is_encrypted(request_booking):
    from datetime import timedelta

    from django.utils import timezone

    quote = Quote.objects.create(booking=request_booking, version=1, price=100, deposit=10,
                                 treatment_plan="Radiosurgery 14 Gy to the margin", window_start=timezone.now().date(),
                                 window_end=timezone.now().date() + timedelta(days=9),
                                 valid_until=timezone.now() + timedelta(days=3))
    assert "14 Gy" not in raw("bookings_quote", "treatment_plan", quote.pk)
    assert Quote.objects.get(pk=quote.pk).treatment_plan == "Radiosurgery 14 Gy to the margin"


def test_stored_files_and_their_names_are_encrypted_on_disk(record, private_root):
    files = [p for p in private_root.rglob("*") if p.is_file()]
    assert len(files) == 1
    on_disk = files[0].read_bytes()
    assert on_disk.startswith(crypto.FILE_MAGIC)
    assert b"paraganglioma" not in on_disk and b"%PDF" not in on_disk
    assert "histology" not in raw("bookings_medicalrecord", "original_name",
                                MedicalRecord._meta.pk.get_db_prep_value(record.pk, connection))
    with record.file.open("rb") as handle:
        assert handle.read() == FILE_CONTENT
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"


def test_a_large_file_is_streamed_in_chunks_and_a_cut_file_is_refused(tmp_path):
    data = os.urandom(crypto.CHUNK * 2 + 123)
    path = tmp_path / "f"
    path.write_bytes(crypto.encrypt_bytes(data))
    assert crypto.decrypt_file_bytes(path) == data
    sealed = path.read_bytes()
    path.write_bytes(sealed[: len(sealed) // 2])
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_file_bytes(path)


def test_a_wrong_key_fails_loudly_for_columns_and_files(record, profile, settings):
    settings.DATA_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError, match="not in DATA_ENCRYPTION_KEYS"):
        PatientProfile.objects.get(pk=profile.pk)
    with pytest.raises(crypto.DecryptionError):
        Booking.objects.get(pk=record.booking_id)
    with pytest.raises(crypto.DecryptionError):
        MedicalRecord.objects.get(pk=record.pk)
    path = Path(settings.PRIVATE_MEDIA_ROOT) / record.file.name
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_file_bytes(path)


def test_a_tampered_value_fails_loudly(profile):
    stored = raw("bookings_patientprofile", "passport_number", profile.pk)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bookings_patientprofile SET passport_number = %s WHERE id = %s",
                       [stored[:-6] + "AAAAA=", profile.pk])
    with pytest.raises(crypto.DecryptionError):
        PatientProfile.objects.get(pk=profile.pk)


def test_encrypted_columns_cannot_be_filtered_but_the_passport_has_a_keyed_hash(profile):
    with pytest.raises(FieldError):
        list(PatientProfile.objects.filter(passport_number=PASSPORT))
    found = PatientProfile.objects.get(passport_number_hash=crypto.lookup_hash("fa 987-6543"))
    assert found.pk == profile.pk
    assert crypto.lookup_hash(PASSPORT) != crypto.lookup_hash("FA9876544")


def test_rotation_keeps_every_value_readable_and_resumes_after_an_interruption(record, profile, patient, settings,
                                                                              monkeypatch):
    old = crypto.configured_keys()[0]
    new = Fernet.generate_key().decode()
    lifecycle.post_message(record.booking, patient, "second message", from_clinic=False)
    settings.DATA_ENCRYPTION_KEYS = [new, old]
    assert rotation.pending()["columns"] > 3 and rotation.pending()["files"] == 1

    # interrupted twice: after one batch of one value, then while replacing the file
    assert rotation.rotate_columns(batch=1, max_batches=1) == 1
    left = rotation.pending()["columns"]
    assert left > 0
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError):
        rotation.rotate()
    monkeypatch.setattr(os, "replace", real_replace)
    assert rotation.pending()["files"] == 1  # the old file is intact and still readable
    with record.file.open("rb") as handle:
        assert handle.read() == FILE_CONTENT
    assert not [p for p in Path(settings.PRIVATE_MEDIA_ROOT).rglob(".rotate-*")]

    # resumed: finishes the rest; a further run has nothing to do
    rotation.rotate()
    assert rotation.pending() == {"columns": 0, "files": 0}
    assert rotation.rotate() == {"columns": 0, "files": 0}

    settings.DATA_ENCRYPTION_KEYS = [new]  # the old key removed: everything still opens
    assert PatientProfile.objects.get(pk=profile.pk).passport_number == PASSPORT
    assert Booking.objects.get(pk=record.booking_id).questionnaire["diagnosis"] == DIAGNOSIS
    assert [m.body for m in Message.objects.filter(booking=record.booking_id)] == ["second message"]
    with MedicalRecord.objects.get(pk=record.pk).file.open("rb") as handle:
        assert handle.read() == FILE_CONTENT
    settings.DATA_ENCRYPTION_KEYS = [old]  # and the old key alone no longer does
    with pytest.raises(crypto.DecryptionError):
        PatientProfile.objects.get(pk=profile.pk)


def test_the_rotation_command_reports_what_is_left(profile, settings, capsys):
    from django.core.management import call_command

    settings.DATA_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), crypto.configured_keys()[0]]
    with pytest.raises(SystemExit):
        call_command("rotate_data_keys", "--check")
    call_command("rotate_data_keys")
    assert "still on an old key: 0 values, 0 files" in capsys.readouterr().out


def test_the_data_migration_encrypts_rows_and_files_stored_in_plain_form(profile, private_root, settings):
    migration = importlib.import_module("bookings.migrations.0005_encrypt_existing")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bookings_patientprofile SET passport_number = %s, date_of_birth = %s, "
                       "passport_number_hash = '' WHERE id = %s", ["PLAIN12345", "1960-01-01", profile.pk])
    plain = private_root / "records" / "legacy"
    plain.parent.mkdir(parents=True, exist_ok=True)
    plain.write_bytes(b"legacy plain file")
    record = MedicalRecord.objects.create(owner=profile.user, file="records/legacy", original_name="old.pdf",
                                          content_type="application/pdf", size=17, sha256="0")

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    migration.encrypt_existing(None, editor)
    migration.encrypt_existing(None, editor)  # a second run changes nothing
    assert "PLAIN" not in raw("bookings_patientprofile", "passport_number", profile.pk)
    refreshed = PatientProfile.objects.get(pk=profile.pk)
    assert refreshed.passport_number == "PLAIN12345" and refreshed.date_of_birth.year == 1960
    assert refreshed.passport_number_hash == crypto.lookup_hash("PLAIN12345")
    assert b"legacy" not in plain.read_bytes()
    with MedicalRecord.objects.get(pk=record.pk).file.open("rb") as handle:
        assert handle.read() == b"legacy plain file"


ROOT = Path(__file__).resolve().parents[2]
PROD = {"DJANGO_ENV": "production", "PATH": "/usr/bin:/bin", "ALLOWED_HOSTS": "x.example", "SECRET_KEY": "k" * 64,
        "STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_PUBLISHABLE_KEY": "pk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
SETUP = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings.production'; django.setup()"


def production_starts(**env):
    result = subprocess.run([sys.executable, "-c", SETUP], env=PROD | env, capture_output=True, text=True, cwd=ROOT)
    return result.returncode == 0, result.stderr


def test_production_refuses_to_start_without_real_keys():
    ok, err = production_starts()
    assert not ok and "DATA_ENCRYPTION_KEYS" in err
    ok, err = production_starts(DATA_ENCRYPTION_KEYS="not-a-key", DATA_HASH_KEY="h" * 40)
    assert not ok and "not a Fernet key" in err
    ok, err = production_starts(DATA_ENCRYPTION_KEYS=crypto.dev_key("k" * 64), DATA_HASH_KEY="h" * 40)
    assert not ok and "development key" in err
    ok, err = production_starts(DATA_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert not ok and "DATA_HASH_KEY" in err
    ok, err = production_starts(DATA_ENCRYPTION_KEYS=Fernet.generate_key().decode(), DATA_HASH_KEY="h" * 40)
    assert ok, err

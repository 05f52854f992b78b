"""The lookup-hash key (DATA_HASH_KEYS) rotates like the encryption keys: a new key first, lookups still find every
patient (hashes made with the old key, or before hashes carried a key id) while ``rotate_data_keys --hashes``
re-hashes in resumable batches; a second run does nothing; production refuses a missing, short or development key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from bookings.models import PatientProfile
from bookings.patients import crypto, rotation

pytestmark = pytest.mark.django_db

OLD = "old-hash-key-" + "o" * 40
NEW = "new-hash-key-" + "n" * 40
PASSPORTS = ["AB1234561", "AB1234562", "AB1234563", "AB1234564", "AB1234565"]


@pytest.fixture
def profiles(settings, django_user_model):
    settings.DATA_HASH_KEYS = [OLD]
    made = []
    for i, number in enumerate(PASSPORTS):
        user = django_user_model.objects.create_user(f"hash-{i}", f"hash{i}@example.com", "a-long-password-5")
        made.append(PatientProfile.objects.create(user=user, given_names="P", family_name=str(i),
                                                  passport_number=number))
    # one row hashed before hashes carried a key id (the bare hex digest): still found, and re-hashed
    legacy = crypto._legacy_hash_with(OLD, PASSPORTS[0])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bookings_patientprofile SET passport_number_hash = %s WHERE id = %s",
                       [legacy, made[0].pk])
    return made


def stored_hashes():
    return dict(PatientProfile.objects.values_list("pk", "passport_number_hash"))


def everyone_found(profiles):
    for profile, number in zip(profiles, PASSPORTS, strict=True):
        # as typed by someone at a desk: spaces, dashes, lower case
        found = list(PatientProfile.with_passport(f"{number[:2].lower()} {number[2:5]}-{number[5:]}"))
        assert [p.pk for p in found] == [profile.pk], number
    return True


def test_lookups_find_every_patient_before_during_and_after_the_rotation(profiles, settings, monkeypatch, capsys):
    assert everyone_found(profiles)
    settings.DATA_HASH_KEYS = [NEW, OLD]  # deployed with the new key first
    assert everyone_found(profiles)
    # every hash is on an old key: ours, and the demo patients' in the test database
    total = PatientProfile.objects.exclude(passport_number_hash="").count()
    assert total >= len(PASSPORTS) and rotation.pending_hashes() == total
    with pytest.raises(SystemExit):
        call_command("rotate_data_keys", "--hashes", "--check")

    # interrupted: one batch of two, then a crash in the middle of the next run
    assert rotation.rehash(batch=2, max_batches=1) == 2
    assert rotation.pending_hashes() == total - 2
    real = crypto.lookup_hash
    calls = []

    def crash_on_the_second(value):
        calls.append(value)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(value)

    monkeypatch.setattr(crypto, "lookup_hash", crash_on_the_second)
    with pytest.raises(RuntimeError):
        call_command("rotate_data_keys", "--hashes", "--batch", "1")
    monkeypatch.setattr(crypto, "lookup_hash", real)
    assert rotation.pending_hashes() == total - 3  # the committed batch stays, the one cut short changed nothing
    assert everyone_found(profiles)

    # resumed: finishes the rest
    capsys.readouterr()
    call_command("rotate_data_keys", "--hashes")
    out = capsys.readouterr().out
    assert f"re-hashed: {total - 3} values" in out and "still on an old hash key: 0 values" in out
    prefix = crypto.hash_key_id(NEW) + ":"
    assert all(h.startswith(prefix) and len(h) <= 64 for h in stored_hashes().values() if h)
    assert everyone_found(profiles)

    # a second run does nothing
    before = stored_hashes()
    assert rotation.rehash() == 0
    call_command("rotate_data_keys", "--hashes", "--check")  # no SystemExit: nothing left
    assert stored_hashes() == before

    settings.DATA_HASH_KEYS = [NEW]  # the old key dropped: everyone still found
    assert everyone_found(profiles)
    settings.DATA_HASH_KEYS = [OLD]  # and the old key alone no longer finds anyone
    assert not PatientProfile.with_passport(PASSPORTS[1]).exists()


def test_a_passport_changed_during_the_rotation_keeps_its_new_hash(profiles, settings, monkeypatch):
    settings.DATA_HASH_KEYS = [NEW, OLD]
    edited = profiles[2]
    real = crypto.lookup_hash

    def meanwhile_the_patient_edits(value):
        if value == PASSPORTS[2]:  # read by the rotation, then saved by the patient before it writes
            monkeypatch.setattr(crypto, "lookup_hash", real)
            edited.passport_number = "CD7654321"
            edited.save()
        return real(value)

    monkeypatch.setattr(crypto, "lookup_hash", meanwhile_the_patient_edits)
    total = PatientProfile.objects.exclude(passport_number_hash="").count()
    assert rotation.rehash() == total - 1  # the edited row is not overwritten with the stale number
    assert [p.pk for p in PatientProfile.with_passport("CD7654321")] == [edited.pk]
    assert not PatientProfile.with_passport(PASSPORTS[2]).exists()
    assert rotation.pending_hashes() == 0


def test_new_hashes_use_the_first_key_and_a_single_data_hash_key_still_works(settings, profiles):
    settings.DATA_HASH_KEYS = [NEW, OLD]
    profile = PatientProfile.objects.get(pk=profiles[1].pk)
    profile.save()
    assert profile.passport_number_hash.startswith(crypto.hash_key_id(NEW) + ":")
    settings.DATA_HASH_KEYS = []
    settings.DATA_HASH_KEY = OLD  # the older setting: a one-key list
    assert crypto.configured_hash_keys() == (OLD,)
    settings.DATA_HASH_KEYS = f"{NEW}, {OLD}"  # a comma-separated string is read as a list too
    assert crypto.configured_hash_keys() == (NEW, OLD)
    assert crypto.lookup_hashes("") == [] and not PatientProfile.with_passport("").exists()


ROOT = Path(__file__).resolve().parents[2]
PROD = {"DJANGO_ENV": "production", "PATH": "/usr/bin:/bin", "ALLOWED_HOSTS": "x.example", "SECRET_KEY": "k" * 64,
        "STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_PUBLISHABLE_KEY": "pk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
        "DATA_ENCRYPTION_KEYS": "1EcZq1a3l5J8bX2nSx7dQ0yWvV4tR6uP9oK2mL3jH5g="}
SETUP = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings.production'; django.setup(); "
         "from django.conf import settings; print(len(settings.DATA_HASH_KEYS))")


def production_starts(**env):
    result = subprocess.run([sys.executable, "-c", SETUP], env=PROD | env, capture_output=True, text=True, cwd=ROOT)
    return result.returncode == 0, result.stdout.strip() + result.stderr


def test_production_refuses_a_missing_short_or_development_hash_key():
    ok, out = production_starts()
    assert not ok and "DATA_HASH_KEY" in out
    ok, out = production_starts(DATA_HASH_KEYS=crypto.dev_hash_key("k" * 64))
    assert not ok and "development hash key" in out
    ok, out = production_starts(DATA_HASH_KEYS="h" * 40 + ",short")
    assert not ok and "32+" in out
    ok, out = production_starts(DATA_HASH_KEY="h" * 40)  # the older single setting
    assert ok and out.startswith("1"), out
    ok, out = production_starts(DATA_HASH_KEYS="a" * 40 + "," + "b" * 40, DATA_HASH_KEY="h" * 40)
    assert ok and out.startswith("2"), out

"""The patient's profile (passport data for the visa letter), companions and private medical records; the log of
who read them, consent per booking, data exports, records kept under a legal obligation after erasure.

Passport numbers, dates of birth, file names and descriptions are encrypted columns and the files are encrypted
on disk (``bookings.patients.crypto``).
"""

import io
import os
import uuid

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from bookings.patients import crypto
from bookings.patients.crypto import EncryptedCharField, EncryptedDateField, EncryptedTextField


class PrivateFileStorage(FileSystemStorage):
    """Medical records live outside MEDIA_ROOT and have no URL: only the checked view serves them.

    The location is read from settings on each use (so tests and deployments can move it), and
    files are readable by the application's user only.
    """

    def __init__(self):
        super().__init__(file_permissions_mode=0o600, directory_permissions_mode=0o700)

    @property
    def base_location(self):
        return str(settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("Medical records have no public URL; use the record download view.")

    def _save(self, name, content):
        """Encrypted on the way to disk (chunk by chunk): the plain content never touches the file system."""
        if hasattr(content, "seek"):
            content.seek(0)
        sealed = io.BytesIO()
        source = content.file if hasattr(content, "file") and content.file is not None else content
        crypto.encrypt_stream(source, sealed)
        sealed.seek(0)
        return super()._save(name, File(sealed, name=name))

    def _open(self, name, mode="rb"):
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("Stored medical files are written only through the storage's save().")
        return File(crypto.open_decrypted(self.path(name)), name=name)


def private_storage():
    return PrivateFileStorage()


class PatientProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient_profile")
    given_names = models.CharField(_("given names (as in passport)"), max_length=150, blank=True)
    family_name = models.CharField(_("family name (as in passport)"), max_length=150, blank=True)
    date_of_birth = EncryptedDateField(_("date of birth"), null=True, blank=True)
    citizenship = CountryField(_("citizenship"), blank=True)
    passport_number = EncryptedCharField(_("passport number"), max_length=30, blank=True)
    # a keyed hash of the passport number: finds a patient by passport without decrypting every row
    # (``with_passport``; ``<key id>:<hash>``, re-hashed by ``rotate_data_keys --hashes`` when the key changes)
    passport_number_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    passport_expiry = models.DateField(_("passport valid until"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    preferred_language = models.CharField(_("preferred language"), max_length=10, choices=settings.LANGUAGES,
                                          default="en")
    home_timezone = models.CharField(_("home time zone"), max_length=64, blank=True)

    # the lookup hashes kept beside encrypted values (bookings.patients.crypto.hashed_fields, rotation.rehash)
    LOOKUP_HASHES = {"passport_number_hash": "passport_number"}

    def save(self, *args, **kwargs):
        self.passport_number_hash = crypto.lookup_hash(self.passport_number or "")
        if kwargs.get("update_fields") is not None and "passport_number" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "passport_number_hash"}
        super().save(*args, **kwargs)

    @classmethod
    def with_passport(cls, number: str):
        """The profiles whose passport number is ``number`` (spaces, dashes and case ignored), found by the keyed
        hash; also hashes made with an older key while ``DATA_HASH_KEYS`` rotates."""
        return cls.objects.filter(crypto.hash_lookup("passport_number_hash", number))

    @property
    def full_name(self):
        return " ".join(p for p in (self.given_names, self.family_name) if p)

    @property
    def visa_ready(self) -> bool:
        return all([self.given_names, self.family_name, self.date_of_birth, self.citizenship,
                    self.passport_number, self.passport_expiry])


class Companion(models.Model):
    profile = models.ForeignKey(PatientProfile, on_delete=models.CASCADE, related_name="companions")
    given_names = models.CharField(_("given names (as in passport)"), max_length=150)
    family_name = models.CharField(_("family name (as in passport)"), max_length=150)
    date_of_birth = EncryptedDateField(_("date of birth"))
    citizenship = CountryField(_("citizenship"))
    passport_number = EncryptedCharField(_("passport number"), max_length=30)
    passport_expiry = models.DateField(_("passport valid until"))
    relationship = models.CharField(_("relationship"), max_length=60, blank=True)


def record_path(instance, filename):
    return f"records/{instance.owner_id}/{instance.id}"


class MedicalRecord(models.Model):
    """A patient's medical file. Private: served only to its owner and to the clinic a booking concerns."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="medical_records")
    booking = models.ForeignKey("bookings.Booking", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="records")
    file = models.FileField(storage=private_storage, upload_to=record_path, max_length=300)
    original_name = EncryptedCharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    description = EncryptedCharField(_("description"), max_length=200, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]


class AccessLogQuerySet(models.QuerySet):
    """Append-only: no bulk change or delete through the ORM (erasure and retention go through
    ``_purge``, the one reviewed exception, see bookings.patients.privacy)."""

    def update(self, **kwargs):
        raise PermissionError("The data access log is append-only.")

    def delete(self):
        raise PermissionError("The data access log is append-only.")

    def bulk_update(self, *args, **kwargs):
        raise PermissionError("The data access log is append-only.")

    def _purge(self):
        return self._raw_delete(self.db)


class RecordAccess(models.Model):
    """Every read of a patient's data by someone other than the patient: a medical record, the questionnaire,
    passport fields, the visa letter. Append-only: the model refuses changes and deletion, the admin is
    read-only, no view writes to it except by adding a row."""

    RECORD, QUESTIONNAIRE, PASSPORT, VISA_LETTER = "record", "questionnaire", "passport", "visa_letter"
    KIND_CHOICES = [(RECORD, _("medical record")), (QUESTIONNAIRE, _("questionnaire and diagnosis")),
                    (PASSPORT, _("passport details")), (VISA_LETTER, _("visa support letter"))]

    record = models.ForeignKey(MedicalRecord, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="accesses")
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="data_accesses")
    booking = models.ForeignKey("bookings.Booking", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="data_accesses")
    kind = models.CharField(max_length=20, choices=KIND_CHOICES, default=RECORD)
    target = models.CharField(max_length=64, blank=True)  # the record's id, kept when the record is gone
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=20, default="download")
    at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["patient", "-at"])]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The data access log is append-only: an entry cannot be changed.")
        if self.record_id and not self.target:
            self.target = str(self.record_id)
        if self.record_id and not self.patient_id:
            self.patient_id = MedicalRecord.objects.filter(pk=self.record_id).values_list("owner_id", flat=True).first()
        if self.record_id and not self.booking_id:
            self.booking_id = MedicalRecord.objects.filter(pk=self.record_id).values_list("booking_id", flat=True).first()
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The data access log is append-only: an entry cannot be deleted.")


class Consent(models.Model):
    """A patient's consent, for one booking, to the processing of their health data and its sharing with the
    booking's clinic: the exact text they agreed to (version, language, text), when, from where; and when they
    withdrew it. A withdrawn consent stays as history; a new one is a new row."""

    booking = models.ForeignKey("bookings.Booking", on_delete=models.CASCADE, related_name="consents")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    version = models.CharField(max_length=20)
    language = models.CharField(max_length=10)
    text = models.TextField()
    given_at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-given_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["booking"], condition=models.Q(withdrawn_at__isnull=True),
                                               name="one_live_consent_per_booking")]


def export_path(instance, filename):
    return f"exports/{instance.user_id}/{instance.id}.zip"


class DataExport(models.Model):
    """A ZIP of everything about a patient, built in the background, downloadable by them until it expires."""

    PENDING, READY, FAILED = "pending", "ready", "failed"
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_exports")
    status = models.CharField(max_length=10, default=PENDING)
    file = models.FileField(storage=private_storage, upload_to=export_path, max_length=300, blank=True)
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class Restriction(models.Model):
    """A booking kept after its patient erased their account because the law obliges the clinic to keep it
    (medical and payment records of care given): hidden from everyone but that clinic, until ``keep_until``.
    ``identity`` keeps the name and date of birth the clinic's record must carry (encrypted)."""

    booking = models.OneToOneField("bookings.Booking", on_delete=models.CASCADE, related_name="restriction")
    reason = models.TextField()
    keep_until = models.DateField()
    identity = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class RetentionNotice(models.Model):
    """An unused account that was warned it will be erased (``erase_after``) unless its owner signs in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="retention_notice")
    warned_at = models.DateTimeField()
    erase_after = models.DateTimeField()

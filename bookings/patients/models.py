"""The patient's profile (passport data for the visa letter), companions and private medical records."""

import uuid

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField


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
        import os

        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("Medical records have no public URL; use the record download view.")


def private_storage():
    return PrivateFileStorage()


class PatientProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient_profile")
    given_names = models.CharField(_("given names (as in passport)"), max_length=150, blank=True)
    family_name = models.CharField(_("family name (as in passport)"), max_length=150, blank=True)
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    citizenship = CountryField(_("citizenship"), blank=True)
    passport_number = models.CharField(_("passport number"), max_length=30, blank=True)
    passport_expiry = models.DateField(_("passport valid until"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    preferred_language = models.CharField(_("preferred language"), max_length=10, choices=settings.LANGUAGES,
                                          default="en")
    home_timezone = models.CharField(_("home time zone"), max_length=64, blank=True)

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
    date_of_birth = models.DateField(_("date of birth"))
    citizenship = CountryField(_("citizenship"))
    passport_number = models.CharField(_("passport number"), max_length=30)
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
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    description = models.CharField(_("description"), max_length=200, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]


class RecordAccess(models.Model):
    """Every read of a medical record. Append-only: no one edits it."""

    record = models.ForeignKey(MedicalRecord, on_delete=models.CASCADE, related_name="accesses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=20, default="download")
    at = models.DateTimeField(auto_now_add=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]

"""Consultations, second opinions and the DICOM summaries of medical records."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def new_room() -> str:
    """An unguessable room name (192 random bits): whoever knows it can join the call."""
    return "emhana-" + secrets.token_urlsafe(24)


class Consultation(models.Model):
    """The video room of a booking of an online consultation, made the first time anyone asks for it."""

    booking = models.OneToOneField("bookings.Booking", on_delete=models.CASCADE, related_name="consultation")
    room = models.CharField(max_length=80, unique=True, default=new_room, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"consultation {self.booking_id}"


class SecondOpinion(models.Model):
    """A clinician's structured opinion on a patient's records and questions (after a call or without one)."""

    YES, NO, AFTER_TESTS = "yes", "no", "after_tests"
    TREATABLE_CHOICES = [
        (YES, _("Yes, this can be done at our clinic")),
        (AFTER_TESTS, _("Possibly, after more tests")),
        (NO, _("No, not at our clinic")),
    ]
    booking = models.OneToOneField("bookings.Booking", on_delete=models.CASCADE, related_name="second_opinion")
    findings = models.TextField(_("findings"), max_length=10000)
    recommended_treatment = models.TextField(_("recommended treatment"), max_length=10000)
    treatable_here = models.CharField(_("can it be done here?"), max_length=20, choices=TREATABLE_CHOICES)
    indicative_price = models.BigIntegerField(_("indicative price (tenge)"), null=True, blank=True)
    currency = models.CharField(max_length=3, default="KZT")
    suggested_offering = models.ForeignKey(
        "catalog.Offering", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("treatment to request"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    written_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    request = models.OneToOneField("bookings.Booking", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="from_opinion")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(indicative_price__gte=0) | models.Q(indicative_price__isnull=True),
                                   name="opinion_price_not_negative"),
        ]

    @property
    def sent(self) -> bool:
        return self.sent_at is not None


class DicomSummary(models.Model):
    """What pydicom read from a DICOM upload (a file or a ZIP of a study), once, and the viewer's order of images."""

    record = models.OneToOneField("bookings.MedicalRecord", on_delete=models.CASCADE, related_name="dicom_summary")
    sha256 = models.CharField(max_length=64)
    modalities = models.CharField(max_length=100, blank=True)
    study_date = models.DateField(null=True, blank=True)
    body_parts = models.CharField(max_length=200, blank=True)
    study_description = models.CharField(max_length=200, blank=True)
    series_count = models.PositiveIntegerField(default=0)
    image_count = models.PositiveIntegerField(default=0)
    # [{"uid": series uid, "description": ..., "modality": ..., "members": [archive index, ...]}], in display order
    series = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=200, blank=True)
    read_at = models.DateTimeField(auto_now=True)

"""A clinician's quote for a treatment request.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from bookings.patients.crypto import EncryptedTextField


class Quote(models.Model):
    """A clinic's versioned offer after review: amount, deposit, what is included, dates, valid until."""

    booking = models.ForeignKey("bookings.Booking", on_delete=models.CASCADE, related_name="quotes")
    version = models.PositiveIntegerField()
    price = models.BigIntegerField(_("price (minor units)"))
    deposit = models.BigIntegerField(_("deposit (minor units)"))
    currency = models.CharField(max_length=3, default="KZT")
    included = models.TextField(_("what is included"), blank=True)
    treatment_plan = EncryptedTextField(_("treatment plan"), blank=True)  # the clinician's notes, encrypted
    window_start = models.DateField(_("earliest start"))
    window_end = models.DateField(_("latest start"))
    valid_until = models.DateTimeField(_("valid until"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)

    class Meta:
        ordering = ["booking_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "version"], name="quote_version_once"),
            models.CheckConstraint(condition=Q(deposit__lte=models.F("price")), name="quote_deposit_not_above_price"),
        ]

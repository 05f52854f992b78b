"""Payment attempts, refunds and the webhook events that moved them (each processed once).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Payment(models.Model):
    """One attempt to pay a booking's deposit through a provider."""

    CREATED, REQUIRES_ACTION, PROCESSING, SUCCEEDED, FAILED, CANCELED = (
        "created", "requires_action", "processing", "succeeded", "failed", "canceled")
    STATE_CHOICES = [(CREATED, _("Created")), (REQUIRES_ACTION, _("Needs confirmation")),
                     (PROCESSING, _("Processing")), (SUCCEEDED, _("Paid")), (FAILED, _("Failed")),
                     (CANCELED, _("Cancelled"))]
    # forward-only order: a late or duplicate event never moves a payment backwards
    RANK = {CREATED: 0, REQUIRES_ACTION: 1, PROCESSING: 2, FAILED: 3, CANCELED: 3, SUCCEEDED: 4}

    booking = models.ForeignKey("bookings.Booking", on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=20, default="stripe")
    intent_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=20, choices=STATE_CHOICES, default=CREATED)
    error_code = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    @property
    def refunded_amount(self) -> int:
        return sum(r.amount for r in self.refunds.all() if r.state != Refund.FAILED)


class Refund(models.Model):
    """One refund attempt against a payment. Never more than was paid, computed by one function."""

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATE_CHOICES = [(PENDING, _("Pending")), (SUCCEEDED, _("Refunded")), (FAILED, _("Failed"))]
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=40)
    state = models.CharField(max_length=12, choices=STATE_CHOICES, default=PENDING)
    provider_refund_id = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class WebhookEvent(models.Model):
    """A provider's webhook event, stored by its id so that it is processed once."""

    provider = models.CharField(max_length=20, default="stripe")
    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True)

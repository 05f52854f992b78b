"""One row per email sent: a retried task finds it and sends nothing twice.
"""

from __future__ import annotations

from django.db import models


class NotificationLog(models.Model):
    """What was sent, keyed so that a retried task never sends the same message twice."""

    key = models.CharField(max_length=200, unique=True)
    booking = models.ForeignKey("bookings.Booking", null=True, on_delete=models.CASCADE, related_name="notifications")
    sent_at = models.DateTimeField(auto_now_add=True)

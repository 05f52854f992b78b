"""Stored payment-provider events are not kept forever: processed ones go after RETENTION_WEBHOOK_DAYS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import WebhookEvent
from bookings.patients import retention

pytestmark = pytest.mark.django_db


def test_processed_events_older_than_the_window_are_deleted_the_rest_kept(settings):
    settings.RETENTION_WEBHOOK_DAYS = 90
    now = timezone.now()

    def event(name, days_ago, processed=True):
        row = WebhookEvent.objects.create(event_id=name, type="payment_intent.succeeded",
                                          payload={"data": {"object": {"metadata": {"booking": "EM-XXXX"}}}},
                                          processed_at=now - timedelta(days=days_ago) if processed else None)
        WebhookEvent.objects.filter(pk=row.pk).update(received_at=now - timedelta(days=days_ago))

    event("evt_old", 91)
    event("evt_recent", 89)
    event("evt_old_unprocessed", 200, processed=False)
    result = retention.apply(now)
    assert result["webhook_events_deleted"] == 1
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == ["evt_old_unprocessed", "evt_recent"]
    assert retention.apply(now)["webhook_events_deleted"] == 0

"""Editors' scheduled publishing."""

from celery import shared_task
from django.core.management import call_command


@shared_task(acks_late=True, name="cms.tasks.publish_scheduled_pages")
def publish_scheduled_pages():
    """Wagtail's scheduled publishing (go-live and expiry dates set by editors)."""
    call_command("publish_scheduled", verbosity=0)

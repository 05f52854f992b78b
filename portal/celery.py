"""Celery app. With no broker configured it runs eagerly (the embedded default)."""

import os

from celery import Celery

from portal.settings import default_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_module())

app = Celery("emhana")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from portal import requestid  # noqa: E402,F401  (carries the request id into tasks and their logs)

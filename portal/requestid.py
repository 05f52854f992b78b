"""A request id for every request, in every log line it causes — in the web process and in the Celery tasks
it enqueues — and in the X-Request-ID response header (a proxy's id is kept when it sends a sane one)."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from celery.signals import before_task_publish, task_postrun, task_prerun

REQUEST_ID = contextvars.ContextVar("request_id", default="")
SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
HEADER = "request_id"


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if SANE.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every log record (empty outside a request or a task)."""

    def filter(self, record):
        record.request_id = REQUEST_ID.get()
        return True


@before_task_publish.connect
def _carry_into_task(headers=None, **_kwargs):
    if headers is not None and REQUEST_ID.get():
        headers[HEADER] = REQUEST_ID.get()


@task_prerun.connect
def _start_task(task=None, **_kwargs):
    if task is None:
        return
    request_id = getattr(task.request, HEADER, None) or (task.request.headers or {}).get(HEADER, "")
    # an eager task runs inside the request: it keeps the request's id
    task.request._request_id_token = REQUEST_ID.set(request_id or REQUEST_ID.get())


@task_postrun.connect
def _end_task(task=None, **_kwargs):
    token = getattr(task.request, "_request_id_token", None) if task else None
    if token is not None:
        REQUEST_ID.reset(token)

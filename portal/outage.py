"""PostgreSQL or Redis down: a clean 503 with a retry message and ``Retry-After``, never a 500.

Django turns every exception a view or a middleware raises into the 500 handler (``portal.errors.server_error``),
which asks ``outage_cause`` whether the exception is one of a backing service being unreachable:

* the database (``django.db`` OperationalError / InterfaceError: refused, terminated, restarting);
* the cache (redis-py's ConnectionError / TimeoutError: Redis holds the page cache and the rate limits);
* the broker (kombu's OperationalError: a task could not be queued).

The answer is rendered without touching the database or the cache (no context processors, no base template),
in the language of the URL (or the one the request had activated), as HTML for pages and as JSON for the API.
When the service is back the next request uses it again: Django checks a persistent database connection before
reusing it (``CONN_HEALTH_CHECKS``) and redis-py reconnects by itself, so the app needs no restart.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

log = logging.getLogger("emhana.outage")

RETRY_AFTER_SECONDS = 30
API_PREFIXES = ("/api/", "/_allauth/")
TEXT_PREFIXES = ("/payments/",)  # Stripe's webhooks: a 503 makes Stripe deliver the event again later


def _database_errors() -> tuple[type[BaseException], ...]:
    return (OperationalError, InterfaceError)


def _cache_errors() -> tuple[type[BaseException], ...]:
    try:  # lazy and optional: redis (~0.13 s to import) is loaded only if the cache uses it; read on errors only
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        return ()
    return (RedisConnectionError, RedisTimeoutError)


def _broker_errors() -> tuple[type[BaseException], ...]:
    try:  # lazy and optional, as _cache_errors: read on the error path only
        from kombu.exceptions import OperationalError as KombuOperationalError
    except ImportError:  # pragma: no cover - kombu comes with celery
        return ()
    return (KombuOperationalError,)


def outage_cause(exc: BaseException | None) -> str | None:
    """``"database"``, ``"cache"`` or ``"broker"`` when ``exc`` (or what caused it) says that service is
    unreachable; None for any other error (a bug stays a 500)."""
    seen = set()
    kinds = (("database", _database_errors()), ("cache", _cache_errors()), ("broker", _broker_errors()))
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for name, types in kinds:
            if types and isinstance(exc, types):
                return name
        exc = exc.__cause__ or exc.__context__
    return None


def _language(request) -> str:
    lang = translation.get_language_from_path(request.path_info) if request is not None else None
    if not lang:
        current = translation.get_language()
        codes = {code for code, _name in settings.LANGUAGES}
        lang = current if current in codes else settings.LANGUAGE_CODE
    return lang


def unavailable_response(request, cause: str) -> HttpResponse:
    """The 503 a visitor sees while ``cause`` is down: says it is temporary, nothing is lost, try again soon."""
    log.warning("503: %s unavailable (%s %s)", cause, getattr(request, "method", ""),
                getattr(request, "path", ""))
    path = getattr(request, "path", "") or ""
    with translation.override(_language(request)):
        message = _("The site is briefly unavailable. Nothing you entered is lost: please try again in a minute.")
        if path.startswith(API_PREFIXES):
            body = json.dumps({"code": "unavailable", "message": str(message)}, ensure_ascii=False)
            response = HttpResponse(body, status=503, content_type="application/json")
        elif path.startswith(TEXT_PREFIXES):
            response = HttpResponse("unavailable", status=503, content_type="text/plain")
        else:
            html = render_to_string("503.html", {"message": message, "retry_after": RETRY_AFTER_SECONDS,
                                                 "language": translation.get_language()})
            response = HttpResponse(html, status=503, content_type="text/html; charset=utf-8")
        response["Content-Language"] = translation.get_language()
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response

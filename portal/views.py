"""Health endpoints, robots.txt and error pages."""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app

from .outage import RETRY_AFTER_SECONDS


@require_GET
def healthz(request):
    """Alive: answers without touching the database (load balancers; the floor in benchmarks)."""
    return HttpResponse("ok", content_type="text/plain")


@never_cache
@require_GET
def readyz(request):
    """Ready: the database answers, and the cache and broker when they are configured; 503 (with
    ``Retry-After``) naming the one that is down. Never cached; never a 500 (tests/faults)."""
    checks = {}
    status = 200
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 — any failure means not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
        status = 503
    try:
        cache.set("readyz", "1", 5)
        checks["cache"] = "ok" if cache.get("readyz") == "1" else "error: not stored"
        if checks["cache"] != "ok":
            status = 503
    except Exception as exc:  # noqa: BLE001
        checks["cache"] = f"error: {exc.__class__.__name__}"
        status = 503
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {exc.__class__.__name__}"
            status = 503
    if status != 200:
        checks["status"] = "unavailable"
    response = JsonResponse(checks, status=status)
    if status != 200:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@require_GET
def robots_txt(request):
    lines = ["User-agent: *", "Disallow: /admin/", "Disallow: /django-admin/", "Disallow: /desk/",
             "Disallow: /api/", "Disallow: /*/accounts/", "Disallow: /*/my/",
             f"Sitemap: {request.build_absolute_uri('/sitemap.xml')}"]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")

"""The JSON API under /api/v1/ (django-ninja), with its OpenAPI document at /api/v1/openapi.json.

Every refusal answers the same body, ``{"code", "message"}`` (``catalog.api.Problem``), with the message in
the request's language: django-ninja's own answers (422 for a value of the wrong type, 400 for a body that is
not JSON, 401, 403 for a missing CSRF token, 404) are rewritten to it here.
"""

from django.http import Http404
from django.urls import path
from django.utils.translation import gettext
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from bookings.api import router as bookings_router
from catalog.api import router as catalog_router

api = NinjaAPI(
    title="Emhana API",
    version="1.0",
    description="Catalogue and booking API for partners, agents and the mobile app.",
    urls_namespace="api",
    docs_url="/docs",
)
api.add_router("", catalog_router)
api.add_router("", bookings_router)

CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method",
         409: "conflict", 422: "invalid", 429: "rate_limited"}
LOCATIONS = {"body", "query", "path", "header", "cookie", "form", "file"}


def problem_response(request, status: int, code: str, message) -> object:
    return api.create_response(request, {"code": code, "message": str(message)}, status=status)


def _field_name(loc) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
        # a body parameter (``payload``) or a Query[...] schema (``filters``) wraps the fields; drop its name
        if len(parts) > 1:
            parts = parts[1:]
    return ".".join(parts) or "?"


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    details = []
    for error in exc.errors[:10]:
        name = _field_name(error.get("loc", ()))
        details.append(f"{name} ({error.get('msg', '')})" if error.get("msg") else name)
    message = gettext("Some values could not be read: %(fields)s.") % {"fields": "; ".join(details)}
    return problem_response(request, 422, "invalid", message)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    status = exc.status_code
    code = getattr(exc, "code", None)
    message = str(exc)
    if code is None:
        if status == 400 and exc.__cause__ is not None and message.startswith("Cannot parse request body"):
            code, message = "body", gettext("The request body is not valid JSON.")
        elif isinstance(exc, AuthenticationError):
            code, message = "unauthorized", gettext("Log in first, or send a valid X-Session-Token header.")
        elif isinstance(exc, AuthorizationError) or (status == 403 and "CSRF" in message):
            code, message = "forbidden", gettext("Not allowed. With a login session, send the CSRF token "
                                                 "(X-CSRFToken header); apps use the X-Session-Token header.")
        else:
            code = CODES.get(status, "error")
    return problem_response(request, status, code, message)


@api.exception_handler(Http404)
def not_found(request, exc: Http404):
    return problem_response(request, 404, "not_found", gettext("Not found."))


urlpatterns = [path("", api.urls)]

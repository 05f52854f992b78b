"""The JSON API under /api/v1/ (django-ninja), with its OpenAPI document at /api/v1/openapi.json.

Every refusal answers the same body, ``{"code", "message"}`` (``catalog.api.Problem``), with the message in
the request's language (its ``lang`` parameter, else Accept-Language): django-ninja's own answers (422 for a value
of the wrong type — with the values in ``fields`` —, 400 for a body that is not JSON, 401, 403 for a missing CSRF
token, 404, 405) and an address under /api/v1/ that does not exist are rewritten to it here. A 429 carries
``Retry-After``. Domain refusals (bookings.errors) get their status from ``bookings.errors.http_status``.
"""

from contextlib import contextmanager
from functools import wraps

from django.conf import settings
from django.http import Http404
from django.urls import path, re_path
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from bookings.api import router as bookings_router
from catalog.api import router as catalog_router

DESCRIPTION = """Catalogue and booking API for partners, agents and the mobile app.

Sign in with allauth's app API (`/_allauth/app/v1/auth/login`) and send its session token in the
`X-Session-Token` header, or use the site's session cookie (then send the CSRF token in `X-CSRFToken` when
changing something). Lists are pages: `limit` (1-100) items from `offset`, answered as `{items, count, next}`.

Every refusal is `{"code", "message"}` with the message in the language asked for (`lang`, else
`Accept-Language`); a 422 also lists the values to fix in `fields`; a 429 says in `Retry-After` how many
seconds to wait. An address under `/api/v1/` that does not exist answers 404 `not_found`, a method an address
does not accept 405 `method` (with `Allow`).
"""


class EmhanaAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                limited = operation.get("responses", {}).get(429)
                if limited is None:
                    limited = operation.get("responses", {}).get("429")
                if limited is not None:
                    limited["headers"] = {"Retry-After": {
                        "description": "Seconds until the limit allows the request again.",
                        "schema": {"type": "integer", "minimum": 1}}}
        return schema


api = EmhanaAPI(
    title="Emhana API",
    version="1.0",
    description=DESCRIPTION,
    urls_namespace="api",
    docs_url="/docs",
)
api.add_router("", catalog_router)
api.add_router("", bookings_router)

CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method",
         409: "conflict", 422: "invalid", 429: "rate_limited"}
LOCATIONS = {"body", "query", "path", "header", "cookie", "form", "file"}
LANGS = {code for code, _ in settings.LANGUAGES}


@contextmanager
def request_language(request):
    """The request's ``lang`` parameter when it is one of ours, else what LocaleMiddleware chose
    (Accept-Language)."""
    lang = request.GET.get("lang")
    with translation.override(lang if lang in LANGS else translation.get_language()):
        yield


def problem_response(request, status: int, code: str, message, **extra) -> object:
    return api.create_response(request, {"code": code, "message": str(message), **extra}, status=status)


def _field_name(loc) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
        # a body parameter (``payload``) or a Query[...] schema (``filters``) wraps the fields; drop its name
        if len(parts) > 1:
            parts = parts[1:]
    return ".".join(parts) or "?"


def _field_message(error: dict) -> str:
    """Why one value was refused, in the request's language (pydantic's own text is English only)."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "missing":
        return gettext("This value is required.")
    if kind in ("greater_than_equal", "greater_than") and ("ge" in ctx or "gt" in ctx):
        return gettext("The smallest value allowed is %(limit)s.") % {"limit": ctx.get("ge", ctx.get("gt"))}
    if kind in ("less_than_equal", "less_than") and ("le" in ctx or "lt" in ctx):
        return gettext("The largest value allowed is %(limit)s.") % {"limit": ctx.get("le", ctx.get("lt"))}
    if kind.startswith("int_"):
        return gettext("Give a whole number.")
    if kind.startswith("datetime_"):
        return gettext("Give a date and time such as 2030-01-31T09:00:00+05:00.")
    if kind.startswith("date_"):
        return gettext("Give a date such as 2030-01-31.")
    if kind.startswith("uuid_"):
        return gettext("Give an identifier as returned by the API.")
    if kind.startswith("string_"):
        return gettext("Give a text.")
    return gettext("This value is not valid.")


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    with request_language(request):
        fields = [{"field": _field_name(e.get("loc", ())), "message": _field_message(e)} for e in exc.errors[:20]]
        named = "; ".join(f"{f['field']} ({f['message']})" for f in fields[:10])
        message = gettext("Some values could not be read: %(fields)s.") % {"fields": named}
        return problem_response(request, 422, "invalid", message, fields=fields)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    status = exc.status_code
    code = getattr(exc, "code", None)
    message = str(exc)
    with request_language(request):
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
        response = problem_response(request, status, code, message)
    retry_after = getattr(exc, "retry_after", None)
    if status == 429:
        response["Retry-After"] = str(retry_after or 60)
    return response


@api.exception_handler(Http404)
def not_found(request, exc: Http404):
    with request_language(request):
        return problem_response(request, 404, "not_found", gettext("Not found."))


def _method_problem(view):
    """django-ninja answers a method an address does not take with an empty 405: give it the error body."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allow = response.get("Allow", "")
            with request_language(request):
                response = problem_response(request, 405, "method", gettext(
                    "This address does not accept %(method)s. It accepts: %(allowed)s.")
                    % {"method": request.method[:10], "allowed": allow})
            response["Allow"] = allow
        return response

    return wrapper


@csrf_exempt
def unknown_address(request, rest=""):
    """Any other address under /api/v1/: a 404 in the API's error body, never an HTML page or a redirect."""
    with request_language(request):
        return problem_response(request, 404, "not_found", gettext("Not found."))


NINJA_URLS = api.urls  # (patterns, app name, namespace); not unpacked: a module-level ``app_name`` changes include()
for pattern in NINJA_URLS[0]:
    pattern.callback = _method_problem(pattern.callback)

urlpatterns = [
    path("", NINJA_URLS),
    re_path(r"^(?P<rest>.*)$", unknown_address),
]

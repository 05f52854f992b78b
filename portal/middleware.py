"""Site-wide middleware: the anonymous page cache and the MFA requirement for staff."""

import hashlib
import json
from importlib import import_module
from urllib.parse import unquote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user
from django.core.handlers.wsgi import WSGIRequest
from django.http import Http404, HttpResponseBadRequest, HttpResponsePermanentRedirect
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.shortcuts import redirect
from django.template.loader import get_template
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from wagtail.models import Site

from catalog.currency import COOKIE, currency_code

from . import pagecache
from .staff import needs_mfa

UNCACHED_PREFIXES = ("/admin", "/django-admin", "/desk", "/api", "/payments", "/static", "/media",
                     "/healthz", "/readyz", "/_allauth", "/stripe-test")
UNCACHED_SEGMENTS = ("/accounts/", "/my/", "/book/")


class AnonymousPageCacheMiddleware:
    """Serve public pages from the page cache: as they are to visitors without a session, and to a signed-in
    patient with only the personal part of the header (the account link) rendered for them.

    The key is the path, the known query parameters (``pagecache.canonical_query``; any other parameter
    bypasses the cache), the language and the display currency. A page that sets a cookie (a form with a CSRF
    token, a message) or was not declared for its query by its view is never stored. A hit is served from this
    process's memory after one read of the version number (see portal/pagecache.py).
    """

    ACCOUNT_START, ACCOUNT_END = b"<!--account-->", b"<!--/account-->"

    def __init__(self, get_response):
        self.get_response = get_response
        self._currencies: dict = {}

    @staticmethod
    def cacheable_path(path: str) -> bool:
        return not path.startswith(UNCACHED_PREFIXES) and not any(s in path for s in UNCACHED_SEGMENTS)

    def cacheable_request(self, request) -> bool:
        """Anonymous and cacheable (kept for callers of the old interface)."""
        return (request.method in ("GET", "HEAD") and settings.SESSION_COOKIE_NAME not in request.COOKIES
                and self.cacheable_path(request.path))

    def currency(self, request, version: int) -> str:
        """``catalog.currency.currency_code``, remembered per (language, cookie, browser language) for the version
        (rates changing bumps it): a hit reads no exchange rates."""
        memo = (version, translation.get_language(), request.COOKIES.get(COOKIE, "")[:8],
                request.META.get("HTTP_ACCEPT_LANGUAGE", "")[:40])
        code = self._currencies.get(memo)
        if code is None:
            if len(self._currencies) > 2048:
                self._currencies.clear()
            code = self._currencies[memo] = currency_code(request)
        return code

    def key(self, request, query: str | None = None, version: int | None = None) -> str:
        if query is None:
            query = pagecache.canonical_query(request.META.get("QUERY_STRING", "")) or ""
        if version is None:
            version = pagecache.current_version()
        raw = f"{request.path}?{query}|{translation.get_language()}|{self.currency(request, version)}"
        return f"page:{version}:{hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()}"

    def __call__(self, request):
        if request.method not in ("GET", "HEAD") or not self.cacheable_path(request.path):
            return self.get_response(request)
        query = pagecache.canonical_query(request.META.get("QUERY_STRING", ""))
        if query is None:  # an unknown parameter: rendered, never stored
            return self.get_response(request)
        key = self.key(request, query)
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            response = self.personal(request, key, query) if request.method == "GET" else None
            return response if response is not None else self.get_response(request)
        entry = pagecache.lookup(key)
        if entry is not None and entry is not pagecache.UNCACHEABLE:
            response = entry.response()
            response["X-Page-Cache"] = "hit"
            return response
        response = self.get_response(request)
        if request.method == "GET" and self.storable(request, response, query):
            pagecache.store(key, pagecache.Entry.from_response(response))
            response["X-Page-Cache"] = "miss"
        return response

    @staticmethod
    def storable(request, response, query: str) -> bool:
        if (response.status_code != 200 or response.cookies or getattr(response, "streaming", False)
                or "no-store" in response.get("Cache-Control", "") or "private" in response.get("Cache-Control", "")
                or pagecache.declared_query(request) != query):
            return False
        if hasattr(response, "render") and callable(response.render) and not response.is_rendered:
            response.render()
        return True

    # --- signed in: the cached page with the account link rendered for the visitor

    def personal(self, request, key: str, query: str):
        user = get_user(request)
        if not user.is_authenticated or self.has_messages(request):
            return None
        entry = pagecache.lookup(key)
        if entry is None:
            entry = self.render_anonymously(request, key, query)
        if entry is None or entry is pagecache.UNCACHEABLE:
            return None
        body = self.splice(entry.body, self.account_link(request, user))
        if body is None:
            return None
        request.user = user
        response = entry.response(body)
        patch_cache_control(response, private=True)
        response["X-Page-Cache"] = "personal"
        return response

    @staticmethod
    def has_messages(request) -> bool:
        """Messages waiting for the visitor (cookie or session storage): the page is rendered in full then."""
        return bool(request.COOKIES.get(getattr(settings, "MESSAGE_COOKIE_NAME", "messages"))
                    or "_messages" in request.session)

    def render_anonymously(self, request, key: str, query: str):
        """On a miss for a signed-in visitor: the page as an anonymous visitor (same language and currency)
        gets it, stored when it may be; ``None`` (and remembered) when it may not."""
        if not isinstance(request, WSGIRequest):
            return None
        environ = dict(request.environ)
        # WSGIRequest stores the decoded path back into its environ (META); WSGI wants it as latin-1 bytes again
        for name in ("PATH_INFO", "SCRIPT_NAME"):
            if name in environ:
                environ[name] = environ[name].encode("utf-8").decode("iso-8859-1")
        environ.pop("HTTP_COOKIE", None)
        if COOKIE in request.COOKIES:
            environ["HTTP_COOKIE"] = f"{COOKIE}={request.COOKIES[COOKIE]}"
        anonymous = WSGIRequest(environ)
        anonymous.session = import_module(settings.SESSION_ENGINE).SessionStore()
        for attr in ("LANGUAGE_CODE", "request_id", "id"):
            if hasattr(request, attr):
                setattr(anonymous, attr, getattr(request, attr))
        response = self.get_response(anonymous)
        if anonymous.session.modified or not self.storable(anonymous, response, query):
            pagecache.remember_uncacheable(key)
            return None
        entry = pagecache.Entry.from_response(response)
        pagecache.store(key, entry)
        return entry

    def splice(self, body: bytes, personal: bytes) -> bytes | None:
        start = body.find(self.ACCOUNT_START)
        end = body.find(self.ACCOUNT_END, start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            return None
        return body[: start + len(self.ACCOUNT_START)] + personal + body[end:]

    @staticmethod
    def account_link(request, user) -> bytes:
        return get_template("includes/account_link.html").render({"user": user, "request": request}).encode()


STAFF_PREFIXES = ("/admin/", "/django-admin/", "/desk/")


class StaffMFAMiddleware:
    """Staff and editors must set up two-factor authentication before they can use the admin or the desk.

    allauth has no per-group MFA switch (TRAPS.md), so this enforces it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (settings.EMHANA_REQUIRE_STAFF_MFA and request.path.startswith(STAFF_PREFIXES)
                and request.user.is_authenticated and needs_mfa(request.user)):
            messages.warning(request, _("Please set up two-factor authentication to use the staff pages."))
            return redirect("mfa_activate_totp")
        return self.get_response(request)


NON_PAGE_PREFIXES = ("/api/", "/desk/", "/payments/", "/admin/", "/django-admin/", "/_allauth/", "/stripe-test/")


class LocaleMiddleware(DjangoLocaleMiddleware):
    """Django's, but a 404 under the API, desk or admin stays a 404.

    Wagtail's catch-all makes every language-prefixed path "valid", so the stock middleware would
    redirect ``/api/v1/nope`` to ``/en/api/v1/nope/`` instead of answering 404.
    """

    def process_response(self, request, response):
        if request.path.startswith(NON_PAGE_PREFIXES):
            return response
        return super().process_response(request, response)


class OtherLanguageSlugMiddleware:
    """A page's address typed or shared with another language's slugs (``/ru/treatments/``) is sent, once
    and permanently, to the page's address in the language of the prefix (``/ru/lechenie/``), not a 404."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 404 or request.method not in ("GET", "HEAD"):
            return response
        target = self.page_url(request)
        if not target:
            return response
        query = request.META.get("QUERY_STRING", "")
        return HttpResponsePermanentRedirect(f"{target}?{query}" if query else target)

    @staticmethod
    def page_url(request) -> str | None:
        lang = translation.get_language_from_path(request.path_info)
        prefix = f"/{lang}/" if lang else ""
        if not prefix or not request.path_info.startswith(prefix):
            return None
        components = [unquote(c) for c in request.path_info[len(prefix):].split("/") if c]
        site = Site.find_for_request(request)
        if not components or len(components) > 8 or site is None:
            return None
        for other, _name in settings.LANGUAGES:
            if other == lang:
                continue
            with translation.override(other):
                try:
                    found = site.root_page.specific.route(request, components)
                except Http404:
                    continue
            page = found.page if hasattr(found, "page") else found[0]
            if not page.live:
                continue
            with translation.override(lang):
                url = page.get_url(request)
            if url and unquote(url) != unquote(request.path_info):
                return url
        return None


class RefuseNulMiddleware:
    """A NUL byte in the path, a query or form parameter, a JSON body, a cookie or a header is refused with a
    400 and a clear message: PostgreSQL cannot store NUL in text ("A string literal cannot contain NUL"), so
    it used to end in a 500 wherever the value reached a query (TRAPS.md).

    Form bodies are read in ``process_view``, as CsrfViewMiddleware reads them anyway; a multipart body posted
    to a ``csrf_exempt`` view is left unread, so that such a view can still set its own upload handlers
    (Django's form fields refuse NUL in text themselves).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self.has_nul(request):
            return self.refusal(request)
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST":
            return None
        content_type = request.content_type or ""
        if content_type == "multipart/form-data" and getattr(view_func, "csrf_exempt", False):
            return None
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if any(self._nul_in(k) or self._any_nul(v) for k, v in request.POST.lists()):
                return self.refusal(request)
        return None

    @staticmethod
    def _nul_in(value) -> bool:
        return isinstance(value, str) and "\x00" in value

    @classmethod
    def _any_nul(cls, values) -> bool:
        return any(cls._nul_in(value) for value in values)

    def has_nul(self, request) -> bool:
        if "\x00" in request.path_info or "%00" in request.META.get("QUERY_STRING", ""):
            return True
        if any(self._nul_in(k) or self._any_nul(v) for k, v in request.GET.lists()):
            return True
        if self._any_nul(request.COOKIES.values()) or self._any_nul(request.COOKIES.keys()):
            return True
        if any(key.startswith("HTTP_") and self._nul_in(value) for key, value in request.META.items()):
            return True
        content_type = request.content_type or ""
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and (
                content_type == "application/json" or content_type.endswith("+json")):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return False
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return False  # Django refuses such a body itself when it is read
            body = request.body
            return b"\x00" in body or b"\\u0000" in body.lower()
        return False

    @staticmethod
    def refusal(request):
        message = _("The request contains a NUL character, which is not allowed in text. Remove it and try again.")
        if request.path.startswith("/api/"):
            return HttpResponseBadRequest(json.dumps({"code": "nul", "message": str(message)}, ensure_ascii=False),
                                          content_type="application/json")
        return HttpResponseBadRequest(str(message), content_type="text/plain; charset=utf-8")

"""Template helpers: money in minor units, language alternates, local times."""

import time
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse, translate_url
from django.utils import translation
from wagtail.coreutils import WAGTAIL_APPEND_SLASH
from wagtail.models import Page, Site

from catalog.models import ServicePage
from portal import l10n
from portal.pagecache import current_version

register = template.Library()


money = register.simple_tag(l10n.money)
converted = register.simple_tag(l10n.converted)
join_place = register.simple_tag(l10n.join_place)  # {% join_place clinic.title clinic.address clinic.city.name %}


_SITE_ROOTS: dict = {}
SITE_ROOTS_SECONDS = 60


def site_roots(code: str) -> list:
    """The sites' root paths in a language, kept in this process for the page-cache version (and a minute, for
    an edited Site): wagtail-modeltranslation reads them from the cache once per language otherwise."""
    now = time.monotonic()
    version = current_version()
    found = _SITE_ROOTS.get(code)
    if found is None or found[0] != version or now - found[1] > SITE_ROOTS_SECONDS:
        with translation.override(code):
            found = _SITE_ROOTS[code] = (version, now, list(Site.get_site_root_paths()))
    return found[2]


def page_url_in(page, code: str, request):
    """The page's address in language ``code``, as ``page.get_url(request)`` gives it, from the page's
    translated url_path column (no site or page lookups); with several sites, Wagtail's own answer."""
    roots = site_roots(code)
    if len(roots) != 1 or not hasattr(page, "url_path"):
        with translation.override(code):
            return page.get_url(request)
    _site_id, root_path, _root_url, *_rest = roots[0]
    with translation.override(code):
        url_path = page.url_path
        if not url_path or not url_path.startswith(root_path):
            return None
        path = reverse("wagtail_serve", args=(url_path[len(root_path):],))
    if not WAGTAIL_APPEND_SLASH and path != "/":
        path = path.rstrip("/")
    return path


@register.simple_tag(takes_context=True)
def alternates(context):
    """[(code, name, url)] for every language: the same page (or view, with its query) in that language.
    Computed once per request and page (the head and the language switch both use it)."""
    request = context.get("request")
    page = context.get("page") or context.get("self")
    result = []
    if request is None:
        return result
    memo_key = ("alternates", getattr(page, "pk", None), request.get_full_path())
    memo = request.__dict__.setdefault("_emhana_memo", {})
    if memo_key in memo:
        return memo[memo_key]
    query = request.META.get("QUERY_STRING", "")
    for code, name in settings.LANGUAGES:
        url = None
        if page is not None and hasattr(page, "get_url"):
            url = page_url_in(page, code, request)
        if not url:
            url = translate_url(request.path, code)
        if query and url:
            url = f"{url}?{query}"
        result.append((code, name, url))
    memo[memo_key] = result
    return result


@register.filter
def lines(text):
    return ServicePage.lines(text)


@register.filter
def local(dt, zone):
    """Show an aware UTC datetime in a zone (a ZoneInfo or its name)."""
    if dt is None:
        return dt
    if isinstance(zone, str):
        zone = ZoneInfo(zone or settings.CLINIC_DEFAULT_TIMEZONE)
    return dt.astimezone(zone)


@register.simple_tag
def nav_links():
    """The catalogue, clinics and information pages in the current language; cached, no query per page view."""
    lang = translation.get_language()
    key = f"nav:{current_version()}:{lang}"
    links = cache.get(key)
    if links is None:
        links = [
            {"url": p.get_url(), "title": p.title}
            for p in Page.objects.live().in_menu().filter(depth=3).order_by("path")
        ]
        cache.set(key, links, 3600)
    return links

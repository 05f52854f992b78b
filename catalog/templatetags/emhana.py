"""Template helpers: money in minor units, language alternates, local times."""

from decimal import Decimal

from django import template
from django.conf import settings
from django.urls import translate_url
from django.utils import translation

register = template.Library()


def _group(value) -> str:
    """Thousands grouped by threes with a narrow no-break space: readable in every language we serve."""
    return f"{int(value):,}".replace(",", "\u202f")


@register.simple_tag
def money(amount, currency="KZT"):
    """350000000 tiyn -> '3 500 000 ₸'."""
    if amount is None:
        return ""
    major = (Decimal(amount) / 100).quantize(Decimal("1"))
    symbol = {"KZT": "₸"}.get(currency.upper(), currency.upper())
    return f"{_group(major)}\u00a0{symbol}"


@register.simple_tag
def converted(amount, display):
    """'≈ 6 900 USD' in the visitor's chosen currency, or nothing when they chose tenge."""
    if display is None or amount is None:
        return ""
    value = display.convert(amount)
    if value is None:
        return ""
    return f"≈\u00a0{_group(value)}\u00a0{display.code}"


@register.simple_tag(takes_context=True)
def alternates(context):
    """[(code, name, url)] for every language: the same page (or view, with its query) in that language."""
    request = context.get("request")
    page = context.get("page") or context.get("self")
    result = []
    if request is None:
        return result
    query = request.META.get("QUERY_STRING", "")
    for code, name in settings.LANGUAGES:
        url = None
        if page is not None and hasattr(page, "get_url"):
            with translation.override(code):
                url = page.get_url(request)
        if not url:
            url = translate_url(request.path, code)
        if query and url:
            url = f"{url}?{query}"
        result.append((code, name, url))
    return result


@register.filter
def lines(text):
    from catalog.models import ServicePage

    return ServicePage.lines(text)


@register.filter
def local(dt, zone):
    """Show an aware UTC datetime in a zone (a ZoneInfo or its name)."""
    from zoneinfo import ZoneInfo

    if dt is None:
        return dt
    if isinstance(zone, str):
        zone = ZoneInfo(zone or settings.CLINIC_DEFAULT_TIMEZONE)
    return dt.astimezone(zone)


@register.simple_tag
def nav_links():
    """The catalogue, clinics and information pages in the current language; cached, no query per page view."""
    from django.core.cache import cache
    from wagtail.models import Page

    from portal.pagecache import current_version

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

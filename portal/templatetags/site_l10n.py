"""Site-wide template filters for times, zones and punctuation in the reader's language (see portal.l10n).

    {% load site_l10n %}
    {{ appointment.start|when:clinic_tz }}        Sat, Dec 5, 2026, 09:00   (in the clinic's zone)
    {{ appointment.start|when_date:clinic_tz }}   Sat, Dec 5, 2026
    {{ appointment.start|when_time:clinic_tz }}   09:00
    {{ quote.window_start|day }}                  a date without a time
    {{ clinic.zone_name|zone_label }}             Almaty (Kazakhstan)
    {% colon %}                                   ': ' or '：' in Chinese
"""

from django import template
from django.utils import translation

from portal import l10n

register = template.Library()


@register.filter
def when(value, zone=None):
    return l10n.format_when(value, zone) if value else ""


@register.filter
def when_date(value, zone=None):
    return l10n.format_date(value, zone=zone) if value else ""


@register.filter
def when_short(value, zone=None):
    """Day and time without the year: 'Sat, Dec 5, 09:00'."""
    return l10n.format_when(value, zone, skeleton="MMMEd") if value else ""


@register.filter
def when_time(value, zone=None):
    return l10n.format_time(value, zone) if value else ""


@register.filter
def day(value, skeleton="yMMMd"):
    return l10n.format_date(value, skeleton=skeleton) if value else ""


@register.filter
def zone_label(value):
    return l10n.zone_label(value) if value else ""


@register.filter
def country_name(code):
    return l10n.country_name(code) if code else ""


@register.simple_tag
def colon():
    return "：" if (translation.get_language() or "").startswith("zh") else ": "

"""Dates, times, time zones and country names in the reader's language, from CLDR (Babel) and ICU.

Every time a patient sees is converted explicitly to the zone given (the clinic's, or the patient's own),
never through Django's active zone: a Celery task has none, and Django's ``date`` filter would print UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.core import get_global
from babel.dates import format_skeleton, get_timezone_location
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_countries import countries

# Django language code -> CLDR locale (Uzbek in Latin script, Chinese simplified)
CLDR = {"en": "en", "ru": "ru", "kk": "kk", "ky": "ky", "uz": "uz_Latn", "tg": "tg", "zh-hans": "zh_Hans"}

# Where our patients come from (shared/reference/languages_countries.md): their zones come first.
PATIENT_COUNTRIES = ["KZ", "KG", "UZ", "TJ", "RU", "CN", "AZ", "TM", "MN", "TR"]


def lang_code(lang: str | None = None) -> str:
    lang = (lang or translation.get_language() or settings.LANGUAGE_CODE).lower()
    return lang if lang in CLDR else lang.split("-")[0] if lang.split("-")[0] in CLDR else "en"


def locale(lang: str | None = None) -> Locale:
    """The CLDR locale of ``lang`` (default: the active language)."""
    return _locale(lang_code(lang))


@lru_cache(maxsize=16)
def _locale(code: str) -> Locale:
    return Locale.parse(CLDR[code])


def as_zone(zone) -> ZoneInfo:
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(str(zone or settings.CLINIC_DEFAULT_TIMEZONE))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.CLINIC_DEFAULT_TIMEZONE)


def format_date(value: date | datetime, lang: str | None = None, skeleton: str = "yMMMEd", zone=None) -> str:
    """'Sat, Dec 5, 2026' / '2026年12月5日周六' / 'сб, 5 дек. 2026 г.'; an aware datetime is first put in ``zone``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(as_zone(zone)) if value.tzinfo else value
    return format_skeleton(skeleton, value, locale=locale(lang))


def format_time(value: datetime, zone=None, lang: str | None = None) -> str:
    """'09:00' in ``zone`` (24-hour clock in every language we serve)."""
    if value is None:
        return ""
    return format_skeleton("Hm", value.astimezone(as_zone(zone)), locale=locale(lang))


def format_when(value: datetime, zone=None, lang: str | None = None, skeleton: str = "yMMMEd") -> str:
    """Date and time in ``zone``, joined as the language joins them: 'Sat, Dec 5, 2026, 09:00'."""
    if value is None:
        return ""
    local = value.astimezone(as_zone(zone))
    pattern = locale(lang).datetime_formats["medium"]
    pattern = str(getattr(pattern, "pattern", pattern))
    return pattern.replace("{1}", format_date(local, lang, skeleton)).replace("{0}", format_time(local, local.tzinfo, lang))


def country_of_zone(zone_name: str) -> str:
    return _zone_countries().get(zone_name, "")


@lru_cache(maxsize=1)
def _zone_countries() -> dict[str, str]:
    """IANA zone -> ISO country (CLDR's zone territories)."""
    return dict(get_global("zone_territories"))


def zone_label(zone, lang: str | None = None) -> str:
    """'Almaty (Kazakhstan)', 'Алматы (Қазақстан)', '阿拉木图（哈萨克斯坦）': a zone as a reader knows it."""
    zone = as_zone(zone)
    loc = locale(lang)
    try:
        city = get_timezone_location(zone, locale=loc, return_city=True)
    except (LookupError, ValueError):
        city = str(zone).rsplit("/", 1)[-1].replace("_", " ")
    country = loc.territories.get(country_of_zone(str(zone)), "")
    if not country or country == city:
        return city
    return f"{city}（{country}）" if lang_code(lang) == "zh-hans" else f"{city} ({country})"


def place_time(place: str, zone, when: datetime | None = None) -> str:
    """'Astana, UTC+05:00': a clinic's time named after its city rather than its zone's."""
    return join_place(place or zone_label(zone), utc_offset(zone, when))


def utc_offset(zone, when: datetime | None = None) -> str:
    offset = (when or timezone.now()).astimezone(as_zone(zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "−"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@lru_cache(maxsize=16)
def _collator(code: str):
    import icu  # lazy: PyICU maps ~9 MB of ICU data, needed only for the profile form's sorted choices

    return icu.Collator.createInstance(icu.Locale(CLDR[code]))


def sort_key(lang: str | None = None):
    """A sort key that orders words as ``lang`` does (ICU collation: Kazakh ә after а, Chinese by pinyin)."""
    return _collator(lang_code(lang)).getSortKey


@lru_cache(maxsize=16)
def _country_choices(lang: str) -> tuple[tuple[str, str], ...]:
    names = locale(lang).territories
    rows = [(code, names.get(code) or str(name)) for code, name in countries]
    key = sort_key(lang)
    return tuple(sorted(rows, key=lambda row: key(row[1])))


def country_choices(lang: str | None = None) -> list[tuple[str, str]]:
    """Every country, named in ``lang`` and sorted as that language sorts (CLDR names, ICU collation)."""
    return list(_country_choices(lang_code(lang)))


def language_name(code: str, lang: str | None = None) -> str:
    """'kk' -> 'казахский' (in Russian): a language named in the reader's language (CLDR)."""
    code = (code or "").strip().replace("-", "_")
    names = locale(lang).languages
    return names.get(code) or names.get(code.split("_")[0]) or code


def country_name(code: str, lang: str | None = None) -> str:
    return locale(lang).territories.get((code or "").upper(), code or "")


@lru_cache(maxsize=16)
def _timezone_choices(lang: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    known = available_timezones()  # reads tzdata's files: once, not once per zone
    zones_by_country: dict[str, list[str]] = {}
    for name, territory in _zone_countries().items():
        if name in known:
            zones_by_country.setdefault(territory, []).append(name)
    key = sort_key(lang)

    def options(names):
        rows = [(n, f"{zone_label(n, lang)} · {utc_offset(n)}") for n in set(names)]
        return tuple(sorted(rows, key=lambda row: key(row[1])))

    with translation.override(lang):
        first = [n for c in PATIENT_COUNTRIES for n in zones_by_country.get(c, [])]
        rest = [n for c, names in zones_by_country.items() if c not in PATIENT_COUNTRIES for n in names]
        return ((gettext("Where most of our patients live"), options(first)),
                (gettext("Other time zones"), options(rest)))


def timezone_choices(lang: str | None = None):
    """Grouped choices: the zones of our patients' countries first, then every other, each as 'Tashkent
    (Uzbekistan) · UTC+05:00' in the reader's language; values are IANA names."""
    return [(group, list(rows)) for group, rows in _timezone_choices(lang_code(lang))]


# --- money: amounts are integers in minor units (tiyn, cents)

def _group(value) -> str:
    """Thousands grouped by threes with a narrow no-break space: readable in every language we serve."""
    return f"{int(value):,}".replace(",", "\u202f")


def money(amount, currency="KZT"):
    """350000000 tiyn -> '3 500 000 ₸'."""
    if amount is None:
        return ""
    major = (Decimal(amount) / 100).quantize(Decimal("1"))
    symbol = {"KZT": "₸"}.get(currency.upper(), currency.upper())
    return f"{_group(major)}\u00a0{symbol}"


def converted(amount, display):
    """'≈ 6 900 USD' in the visitor's chosen currency, or nothing when they chose tenge."""
    if display is None or amount is None:
        return ""
    value = display.convert(amount)
    if value is None:
        return ""
    return f"≈\u00a0{_group(value)}\u00a0{display.code}"


def join_place(*parts, lang: str | None = None) -> str:
    """An address's parts in one line, separated as the language writes them ("，" in Chinese, ", " elsewhere);
    empty parts are left out."""
    separator = "，" if lang_code(lang).startswith("zh") else ", "
    return separator.join(str(p) for p in parts if p)


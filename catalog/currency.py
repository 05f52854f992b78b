"""Display currencies: prices are kept in KZT minor units and shown converted at staff-set rates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import get_territory_currencies
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme

from .models import ExchangeRate

RATES_KEY = "catalog:exchange-rates"
COOKIE = "currency"


def rates() -> dict[str, Decimal]:
    cached = cache.get(RATES_KEY)
    if cached is None:
        cached = {r.currency: r.kzt_per_unit for r in ExchangeRate.objects.all()}
        cache.set(RATES_KEY, cached, 3600)
    return cached


def forget_rates(**_kwargs):
    cache.delete(RATES_KEY)


@dataclass(frozen=True)
class DisplayCurrency:
    code: str
    kzt_per_unit: Decimal | None  # None: show tenge only

    def convert(self, kzt_minor: int) -> Decimal | None:
        if self.kzt_per_unit is None or kzt_minor is None:
            return None
        return (Decimal(kzt_minor) / 100 / self.kzt_per_unit).quantize(Decimal("1"))


# With no choice made: the currency of the country in the browser's language tag ("ru-KG" -> KGS), else the
# one most readers of the page's language pay in.
LANGUAGE_CURRENCY = {"en": "USD", "ru": "RUB", "kk": "KZT", "ky": "KGS", "uz": "UZS", "tg": "TJS", "zh-hans": "CNY"}


def _region_currency(request) -> str | None:
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    first = header.split(",")[0].split(";")[0].strip().replace("_", "-")
    parts = [p for p in first.split("-")[1:] if len(p) == 2 and p.isalpha()]
    if not parts:
        return None
    try:
        currencies = get_territory_currencies(parts[0].upper())
    except Exception:  # noqa: BLE001 - an unknown region is simply no hint
        return None
    return next((c for c in currencies if c == "KZT" or c in rates()), None)


def currency_code(request) -> str:
    """The display currency: the visitor's choice (cookie), else their region's, else their language's."""
    chosen = (request.COOKIES.get(COOKIE) or "").upper()
    if chosen == "KZT" or chosen in rates():
        return chosen
    guessed = _region_currency(request) or LANGUAGE_CURRENCY.get(translation.get_language() or "", "USD")
    return guessed if guessed == "KZT" or guessed in rates() else "KZT"


def display_currency(request) -> DisplayCurrency:
    code = currency_code(request)
    rate = rates().get(code)
    if rate is None:
        return DisplayCurrency("KZT", None)
    return DisplayCurrency(code, rate)


CHOICES = ("KZT", "USD", "EUR", "RUB", "CNY", "UZS", "KGS", "TJS")


def currency_context(request):
    """Every page knows the display currency (the header's switcher shows it)."""
    return {"currency": display_currency(request), "currency_choices": CHOICES}


def choose_currency(request):
    """GET /<lang>/currency/?code=USD&next=/ru/...: remember the choice in a cookie and go back."""
    code = (request.GET.get("code") or "KZT").upper()
    nxt = request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        nxt = "/"
    response = HttpResponseRedirect(nxt)
    if code == "KZT" or code in rates():
        response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax")
    return response

"""Display currencies: prices are kept in KZT minor units and shown converted at staff-set rates."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

RATES_KEY = "catalog:exchange-rates"
COOKIE = "currency"


def rates() -> dict[str, Decimal]:
    cached = cache.get(RATES_KEY)
    if cached is None:
        from .models import ExchangeRate

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


def display_currency(request) -> DisplayCurrency:
    code = (request.COOKIES.get(COOKIE) or "KZT").upper()
    rate = rates().get(code)
    if rate is None:
        return DisplayCurrency("KZT", None)
    return DisplayCurrency(code, rate)


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

"""Template tags of the trip plan (registered as the ``trip`` library in settings.TEMPLATES): the visa notice
before payment, the booking page's trip panel, the waitlist link on an empty slot page, the desk's panel and
the estimate in the quote email."""

from __future__ import annotations

from babel.numbers import get_territory_currencies
from django import template
from django.urls import reverse
from django.utils.translation import gettext as _

from bookings.engine.waitlist import waitlistable
from bookings.models import BookingExtra, OfferingExtra, VisaRefusal, WaitlistEntry
from bookings.patients.records import records_for_clinic_staff  # noqa: F401 - the letter is read through it
from bookings.trip import entry, estimate, extras, visa_refusal
from bookings.trip.entry import citizenship_of
from catalog.currency import LANGUAGE_CURRENCY
from portal.l10n import money

register = template.Library()


def _display(context):
    display = context.get("currency")
    code = getattr(display, "code", None)
    return code or "KZT"


@register.inclusion_tag("trip/_stay_notice.html", takes_context=True)
def stay_notice(context):
    """Whether the whole stay needs a visa, for the booking in hand or the offering being chosen."""
    request = context.get("request")
    user = getattr(request, "user", None)
    booking = context.get("booking")
    if booking is not None and getattr(booking, "pk", None):
        verdict = entry.for_booking(booking)
    elif context.get("offering") is not None:
        verdict = entry.for_offering(context["offering"], user)
    else:
        return {"verdict": None}
    return {"verdict": verdict, "profile_url": _url("patient_profile")}


def _url(name, *args):
    return reverse(name, args=args)


@register.inclusion_tag("trip/_booking_panel.html", takes_context=True)
def trip_panel(context, booking, notice=True):
    """The booking page's trip plan: visa, extras (chosen, or to choose before paying), the all-in estimate,
    a visa refusal under review, and the waitlist."""
    chosen = extras.chosen(booking)
    current = {e.extra_id: e.quantity for e in chosen}
    offers = [{"extra": o, "qty": current.get(o.pk, 0)} for o in extras.offered(booking.offering)]
    return {
        "booking": booking,
        "verdict": entry.for_booking(booking) if notice else None,
        "estimate": estimate.for_booking(booking, _display(context)),
        "chosen": chosen,
        "all_extras": extras.for_booking(booking),  # with the declined ones, and the clinic's reason
        "offers": offers,
        "can_choose": extras.can_choose(booking) and bool(offers),
        "refusal": VisaRefusal.objects.filter(booking=booking).order_by("-created_at").first(),
        "can_claim": visa_refusal.can_claim(booking),
        "waiting_statuses": (VisaRefusal.WAITING,),
        "waitlist": WaitlistEntry.objects.filter(booking=booking, status__in=WaitlistEntry.OPEN).first(),
        "night": OfferingExtra.PER_NIGHT,
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


@register.inclusion_tag("trip/_waitlist_link.html", takes_context=True)
def waitlist_link(context, offering, booking=None):
    """On a slot page with no free start: the way onto the waitlist (machines only)."""
    if offering is None or not waitlistable(offering):
        return {"show": False}
    url = _url("trip_waitlist_join", offering.pk)
    if booking is not None and getattr(booking, "reference", None):
        url += f"?booking={booking.reference}"
    return {"show": True, "url": url}


@register.inclusion_tag("trip/_desk_panel.html", takes_context=True)
def desk_trip_panel(context, booking):
    """The desk's trip panel: the visa verdict, the patient's extras with the clinic's answer (confirm, or cannot
    provide with a reason), and visa-refusal letters to confirm."""
    rows = extras.for_booking(booking)
    return {
        "booking": booking,
        "verdict": entry.for_booking(booking),
        "extras": rows,
        "extras_waiting": sum(1 for e in rows if e.status == BookingExtra.REQUESTED),
        "decidable": booking.state in extras.DECIDABLE,
        "paid": booking.payments.filter(state="succeeded").exists(),
        "refusals": list(VisaRefusal.objects.filter(booking=booking).select_related("letter")),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }


def patient_currency(booking) -> str:
    """The currency a patient pays in at home: their citizenship's, else their language's."""
    country = citizenship_of(booking.user)
    if country:
        try:
            currencies = get_territory_currencies(country)
        except Exception:  # noqa: BLE001 - an unknown territory is no hint
            currencies = []
        if currencies:
            return currencies[0]
    return LANGUAGE_CURRENCY.get(booking.language or "en", "USD")


@register.simple_tag
def estimate_text(booking):
    """The itemised estimate as plain text for the quote email, in the patient's currency beside tenge."""
    est = estimate.for_booking(booking, patient_currency(booking))
    verdict = entry.for_booking(booking)

    def amount(kzt, conv):
        return money(kzt, est.currency) + (f" (≈ {money(conv, est.display)})" if conv is not None else "")

    lines = [_("All-in estimate (expected stay: %(days)d days, %(nights)d nights):") % {
        "days": est.stay_days, "nights": est.nights}]
    for line in est.lines:
        when = _("with the deposit") if line.when == "deposit" else _("at the clinic")
        lines.append(f"- {line.label}: {amount(line.amount, line.converted)}, {when}")
    lines.append(_("Deposit to book") + ": " + amount(est.deposit, est.deposit_converted))
    lines.append(_("Paid at the clinic") + ": " + amount(est.at_clinic, est.at_clinic_converted))
    lines.append(_("Total") + ": " + amount(est.total, est.total_converted))
    if verdict.message:
        lines.append("")
        lines.append(str(verdict.message))
    return "\n".join(lines)

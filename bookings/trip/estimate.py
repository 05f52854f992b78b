"""The all-in estimate of a trip: treatment, extras, expected nights, what is paid when — in tenge and in the
patient's currency (integer minor units both; converted at the staff-set rates of catalog.currency).

Shown on the booking page and at checkout, in the quote email and as a PDF (fpdf2, the visa letter's fonts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from bookings.payments.services import paid_amount
from bookings.trip import entry
from bookings.trip import extras as extras_service
from catalog.currency import rates
from portal.l10n import money


def to_currency(kzt_minor: int, code: str, kzt_per_unit: Decimal | None) -> int | None:
    """Tenge minor units to ``code``'s minor units (both hundredths), rounded half up; None without a rate."""
    if kzt_per_unit is None or code == "KZT":
        return None
    return int((Decimal(kzt_minor) / Decimal(kzt_per_unit)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@dataclass
class Line:
    label: str
    amount: int  # tenge minor units
    when: str  # "deposit" (paid by card to book) or "clinic" (paid at the clinic)
    detail: str = ""
    converted: int | None = None


@dataclass
class Estimate:
    currency: str  # the booking's currency (KZT)
    display: str  # the patient's currency code
    lines: list[Line] = field(default_factory=list)
    stay_days: int = 0
    nights: int = 0
    deposit: int = 0
    at_clinic: int = 0
    total: int = 0
    deposit_converted: int | None = None
    at_clinic_converted: int | None = None
    total_converted: int | None = None
    paid: int = 0

    @property
    def shows_conversion(self) -> bool:
        return self.total_converted is not None


def build(offering, *, price: int, deposit: int, chosen=(), sessions=None, display_code: str = "KZT",
          kzt_per_unit=None, paid: int = 0) -> Estimate:
    """``price``/``deposit``: the treatment's own (without extras); ``chosen``: BookingExtra rows (or unsaved ones)."""
    stay = entry.expected_stay_days(offering, sessions)
    est = Estimate(currency=offering.currency or "KZT", display=display_code if kzt_per_unit else "KZT",
                   stay_days=stay, nights=max(0, stay - 1), paid=paid)
    est.lines.append(Line(_("Treatment: deposit to book"), deposit, "deposit", offering.page.title))
    if price > deposit:
        est.lines.append(Line(_("Treatment: balance at the clinic"), price - deposit, "clinic"))
    for extra in chosen:
        unit = _("night") if extra.unit == "night" else _("unit")
        detail = _("%(qty)d × %(unit)s") % {"qty": extra.quantity, "unit": unit}
        if getattr(extra, "status", "") == "requested":
            detail = f"{detail} · " + _("waiting for the clinic to confirm")
        est.lines.append(Line(extra.label, extra.total, "deposit" if extra.with_deposit else "clinic", detail))
    est.deposit = sum(line.amount for line in est.lines if line.when == "deposit")
    est.at_clinic = sum(line.amount for line in est.lines if line.when == "clinic")
    est.total = est.deposit + est.at_clinic
    for line in est.lines:
        line.converted = to_currency(line.amount, est.display, kzt_per_unit)
    est.deposit_converted = to_currency(est.deposit, est.display, kzt_per_unit)
    est.at_clinic_converted = to_currency(est.at_clinic, est.display, kzt_per_unit)
    est.total_converted = to_currency(est.total, est.display, kzt_per_unit)
    return est


def display_for(code: str | None):
    """(code, tenge per unit) for a currency code, from the staff-set rates; ("KZT", None) without a rate."""
    code = (code or "KZT").upper()
    rate = rates().get(code)
    return (code, rate) if rate else ("KZT", None)


def for_booking(booking, display_code: str | None = None) -> Estimate:
    chosen = extras_service.chosen(booking)
    all_extras, with_deposit = extras_service.totals(chosen)
    code, rate = display_for(display_code)
    quote = booking.current_quote() if booking.state in ("quoted", "under_review") else None
    price = quote.price if quote else booking.price - all_extras
    deposit = quote.deposit if quote else booking.deposit - with_deposit
    return build(booking.offering, price=price, deposit=deposit, chosen=chosen,
                 sessions=entry.booking_sessions(booking) or None, display_code=code, kzt_per_unit=rate,
                 paid=paid_amount(booking))


def pdf(booking, est: Estimate) -> bytes:
    """The estimate as a one-page PDF (DejaVu Sans when installed, as the visa letter)."""
    # lazy: fpdf (~0.3 s to import, also through bookings.patients.visa) only for this download
    from fpdf import FPDF

    from bookings.patients.visa import font_paths

    doc = FPDF(format="A4")
    doc.set_margins(20, 16, 20)
    doc.add_page()
    regular, bold = font_paths()
    if regular:
        doc.add_font("Est", "", regular)
        doc.add_font("Est", "B", bold or regular)
        face = "Est"
    else:
        face = "Helvetica"

    def text(value: str) -> str:
        return value if regular else value.encode("latin-1", "replace").decode("latin-1")

    def para(height: int, value) -> None:
        doc.multi_cell(0, height, text(str(value)), new_x="LMARGIN", new_y="NEXT")

    doc.set_font(face, "B", 15)
    para(8, (_("All-in estimate for %(reference)s") % {"reference": booking.reference}))
    doc.set_font(face, "", 10)
    para(6, (f"{booking.service_title} — {booking.clinic.title}"))
    para(6, (_("Expected stay: %(days)d days (%(nights)d nights)") % {
        "days": est.stay_days, "nights": est.nights}))
    doc.ln(3)
    show = est.shows_conversion
    widths = (90, 40, 40) if show else (120, 50)
    doc.set_font(face, "B", 10)
    header = [_("Item"), _("Tenge")] + ([est.display] if show else [])
    for w, h in zip(widths, header, strict=True):
        doc.cell(w, 7, text(str(h)), border=1)
    doc.ln()
    doc.set_font(face, "", 10)
    for section, when in ((_("Paid by card to book (deposit)"), "deposit"), (_("Paid at the clinic"), "clinic")):
        doc.set_font(face, "B", 10)
        doc.cell(sum(widths), 7, text(str(section)), border=1)
        doc.ln()
        doc.set_font(face, "", 10)
        for line in [ln for ln in est.lines if ln.when == when]:
            label = f"{line.label} ({line.detail})" if line.detail else line.label
            cells = [label[:70], money(line.amount, est.currency)]
            if show:
                cells.append(money(line.converted, est.display))
            for w, c in zip(widths, cells, strict=True):
                doc.cell(w, 7, text(str(c)), border=1)
            doc.ln()
    doc.set_font(face, "B", 10)
    for label, kzt, conv in ((_("Deposit"), est.deposit, est.deposit_converted),
                             (_("At the clinic"), est.at_clinic, est.at_clinic_converted),
                             (_("Total"), est.total, est.total_converted)):
        cells = [str(label), money(kzt, est.currency)] + ([money(conv, est.display)] if show else [])
        for w, c in zip(widths, cells, strict=True):
            doc.cell(w, 7, text(str(c)), border=1)
        doc.ln()
    doc.ln(3)
    doc.set_font(face, "", 9)
    para(5, (_("Amounts in other currencies are estimates at today's rates; the clinic charges in "
                                "tenge. Printed %(date)s.") % {"date": date_format(timezone.localdate(),
                                                                                    "DATE_FORMAT")}))
    return bytes(doc.output())

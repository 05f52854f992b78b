"""The visa support letter: a PDF built on each request from the booking's current data.

Built with fpdf2 and a TrueType font that has Cyrillic (DejaVu Sans, Debian package ``fonts-dejavu-core``),
because fpdf2's core fonts are Latin-1 only and patients' and clinics' names are often in Cyrillic. Without
the font the letter still builds, in a core font, with characters outside Latin-1 replaced, and says so.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.fonts import FontFace

from bookings.models import Appointment, Booking, PatientProfile
from portal.l10n import country_name

log = logging.getLogger("emhana.bookings")

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
)


def font_paths() -> tuple[str | None, str | None]:
    """(regular, bold) TTF paths: settings.VISA_LETTER_FONT (and _BOLD) first, then DejaVu's usual places."""
    regular = getattr(settings, "VISA_LETTER_FONT", None)
    if not regular or not os.path.exists(regular):
        regular = next((p for p in FONT_CANDIDATES if os.path.exists(p)), None)
    if regular is None:
        return None, None
    bold = getattr(settings, "VISA_LETTER_FONT_BOLD", None)
    if not bold or not os.path.exists(bold):
        guess = regular.replace("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
        bold = guess if os.path.exists(guess) else None
    return regular, bold


def _d(value) -> str:
    return date_format(value, "DATE_FORMAT") if value else "—"


class _Letter(FPDF):
    def __init__(self):
        super().__init__(format="A4")
        self.set_margins(20, 14, 20)
        self.set_auto_page_break(True, margin=14)
        regular, bold = font_paths()
        self.has_unicode = regular is not None
        if self.has_unicode:
            self.add_font("Letter", "", regular)
            self.add_font("Letter", "B", bold or regular)
            self.fam = "Letter"
        else:
            log.warning("visa letter: no DejaVuSans.ttf found; install fonts-dejavu-core for Cyrillic names")
            self.fam = "Helvetica"

    def t(self, value) -> str:
        value = str(value or "")
        if self.has_unicode:
            return value
        return value.encode("latin-1", "replace").decode("latin-1")

    def para(self, value, size=11, style="", gap=1.5):
        self.set_font(self.fam, style, size)
        self.multi_cell(0, 5.6, self.t(value), new_x="LMARGIN", new_y="NEXT")
        self.ln(gap)

    def rows(self, pairs):
        """Label/value pairs in two columns; both wrap, so long translations never overlap."""
        self.set_font(self.fam, "", 10)
        with self.table(col_widths=(38, 62), first_row_as_headings=False, borders_layout="NONE",
                        line_height=5, text_align="LEFT", padding=(0.4, 1, 0.4, 0)) as table:
            for label, value in pairs:
                row = table.row()
                row.cell(self.t(label), style=FontFace(emphasis="BOLD"))
                row.cell(self.t(value))
        self.ln(1)


def stay_dates(sessions: list[Appointment], tz, stay_days: int):
    """(arrival, first session, last session, departure) as local dates; arrival is the day before."""
    first = sessions[0].start.astimezone(tz).date()
    last = sessions[-1].end.astimezone(tz).date()
    arrival = first - timedelta(days=1)
    departure = max(last + timedelta(days=1), arrival + timedelta(days=max(stay_days, 1)))
    return arrival, first, last, departure


def _person(pdf: _Letter, heading: str, person):
    pdf.para(heading, size=11, style="B", gap=0.5)
    pairs = [
        (_("Full name"), f"{person.family_name.upper()} {person.given_names}"),
        (_("Date of birth"), _d(person.date_of_birth)),
        (_("Citizenship"), country_name(person.citizenship.code) if person.citizenship else "—"),
        (_("Passport number"), person.passport_number),
        (_("Passport valid until"), _d(person.passport_expiry)),
    ]
    relationship = getattr(person, "relationship", "")
    if relationship:
        pairs.append((_("Relationship to the patient"), relationship))
    pdf.rows(pairs)
    pdf.ln(1)


def build_visa_letter(booking: Booking, profile: PatientProfile, now=None) -> bytes:
    """The letter as PDF bytes. The caller checks that the booking is confirmed and belongs to the patient."""
    now = now or timezone.now()
    clinic = booking.clinic
    tz = clinic.tz
    sessions = list(booking.appointments.exclude(
        status__in=[Appointment.RELEASED, Appointment.CANCELLED]).order_by("start"))
    companions = list(profile.companions.all())

    pdf = _Letter()
    pdf.set_title(_("Visa support letter") + f" {booking.reference}")
    pdf.set_author("Emhana")
    pdf.add_page()
    pdf.para(clinic.title, size=14, style="B", gap=0.5)
    city = clinic.city.name if clinic.city.name not in (clinic.address or "") else ""
    address = ", ".join(p for p in (clinic.address, city, _("Republic of Kazakhstan")) if p)
    pdf.para(address, size=10, gap=0.5)
    contact = " · ".join(p for p in (clinic.phone, clinic.email) if p)
    if contact:
        pdf.para(contact, size=10, gap=0.5)
    pdf.ln(2)
    pdf.para(_("Date: %(date)s") % {"date": _d(now.astimezone(tz).date())}, size=10, gap=0.5)
    pdf.para(_("Reference: %(ref)s") % {"ref": booking.reference}, size=10, gap=4)
    pdf.para(_("To the Embassy or Consulate of the Republic of Kazakhstan"), style="B", gap=3)
    pdf.para(_("VISA SUPPORT LETTER FOR MEDICAL TREATMENT"), size=13, style="B", gap=3)

    name = profile.full_name
    if sessions:
        arrival, first, last, departure = stay_dates(sessions, tz, booking.offering.stay_days)
        pdf.para(_("%(clinic)s confirms that %(name)s is booked, from %(first)s to %(last)s, for the treatment "
                   "“%(treatment)s” at our clinic in %(city)s. The deposit for the treatment has been paid.") % {
            "clinic": clinic.title, "name": name, "treatment": booking.service_title, "city": clinic.city.name,
            "first": _d(first), "last": _d(last)})
    else:
        arrival = departure = None
        pdf.para(_("%(clinic)s confirms that %(name)s is booked for the treatment “%(treatment)s” at our clinic "
                   "in %(city)s. The deposit for the treatment has been paid.") % {
            "clinic": clinic.title, "name": name, "treatment": booking.service_title, "city": clinic.city.name})
    pdf.para(_("We kindly ask you to issue a visa for medical treatment to the patient and the persons "
                "accompanying them listed below."), gap=3)

    _person(pdf, _("Patient"), profile)
    for i, companion in enumerate(companions, start=1):
        _person(pdf, _("Accompanying person %(n)d") % {"n": i}, companion)

    pdf.para(_("Treatment"), size=11, style="B", gap=0.5)
    pairs = [(_("Treatment"), booking.service_title), (_("Clinic"), clinic.title)]
    if sessions:
        local = [(a.start.astimezone(tz), a.end.astimezone(tz)) for a in sessions]
        pairs.append((_("Sessions"), "; ".join(f"{_d(s.date())} {s:%H:%M}–{e:%H:%M}" for s, e in local)))
        pairs.append((_("Planned stay"), _("%(arrival)s – %(departure)s (arrival the day before treatment)") % {
            "arrival": _d(arrival), "departure": _d(departure)}))
    pairs.append((_("Booking reference"), booking.reference))
    pdf.rows(pairs)
    pdf.ln(2)
    pdf.para(_("The dates may change on medical advice; this letter is regenerated from the booking's current "
                "dates each time it is downloaded. To check it, contact the clinic quoting the reference above."),
             size=9, gap=4)
    pdf.para(_("International patient coordinator, %(clinic)s") % {"clinic": clinic.title}, size=10)
    if not pdf.has_unicode:
        pdf.para("Note: this copy was produced without a Unicode font; characters outside Latin-1 are shown as "
                 "'?'. Install fonts-dejavu-core on the server.", size=8)
    return bytes(pdf.output())

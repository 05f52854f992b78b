"""The clinician's opinion as a PDF, in the patient's language.

Font handling is the visa letter's (``bookings.patients.visa.font_paths``: DejaVu Sans for Latin and Cyrillic);
Chinese needs a CJK font as well: Noto Sans CJK SC (Debian ``fonts-noto-cjk``, which ``make e2e`` installs for
chromium) is added as a fallback font, so a Chinese opinion or name is drawn, not replaced. Without it, CJK
characters come out as "?" and the PDF says so (settings.OPINION_CJK_FONT names another .ttc/.ttf).
"""

from __future__ import annotations

import logging
import os
import re

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.fonts import FontFace

from bookings.patients.visa import font_paths
from portal import l10n
from portal.l10n import money

log = logging.getLogger("emhana.consult")

CJK_CANDIDATES = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # index 2: Simplified Chinese
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
)
CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")


def cjk_font() -> tuple[str | None, int]:
    configured = getattr(settings, "OPINION_CJK_FONT", None)
    if configured and os.path.exists(configured):
        return configured, int(getattr(settings, "OPINION_CJK_FONT_INDEX", 0))
    return next(((p, i) for p, i in CJK_CANDIDATES if os.path.exists(p)), (None, 0))


class _Opinion(FPDF):
    def __init__(self, needs_cjk: bool):
        super().__init__(format="A4")
        self.set_margins(20, 14, 20)
        self.set_auto_page_break(True, margin=14)
        regular, bold = font_paths()
        self.has_unicode = regular is not None
        self.has_cjk = False
        if self.has_unicode:
            self.add_font("Letter", "", regular)
            self.add_font("Letter", "B", bold or regular)
            self.fam = "Letter"
            cjk, index = cjk_font() if needs_cjk else (None, 0)
            if cjk:
                self.add_font("CJK", "", cjk, collection_font_number=index)
                self.add_font("CJK", "B", cjk, collection_font_number=index)
                self.set_fallback_fonts(["CJK"], exact_match=False)
                self.has_cjk = True
            elif needs_cjk:
                log.warning("opinion PDF: no CJK font found; install fonts-noto-cjk for Chinese")
        else:
            log.warning("opinion PDF: no DejaVuSans.ttf found; install fonts-dejavu-core for Cyrillic")
            self.fam = "Helvetica"

    def t(self, value) -> str:
        value = str(value or "")
        if not self.has_unicode:
            return value.encode("latin-1", "replace").decode("latin-1")
        if not self.has_cjk:
            return CJK.sub("?", value)
        return value

    def para(self, value, size=11, style="", gap=1.5):
        self.set_font(self.fam, style, size)
        self.multi_cell(0, 5.6, self.t(value), new_x="LMARGIN", new_y="NEXT")
        self.ln(gap)

    def rows(self, pairs):
        self.set_font(self.fam, "", 10)
        with self.table(col_widths=(38, 62), first_row_as_headings=False, borders_layout="NONE",
                        line_height=5, text_align="LEFT", padding=(0.4, 1, 0.4, 0)) as table:
            for label, value in pairs:
                row = table.row()
                row.cell(self.t(label), style=FontFace(emphasis="BOLD"))
                row.cell(self.t(value))
        self.ln(1)


def build_opinion_pdf(opinion, now=None) -> bytes:
    """The PDF bytes of a sent opinion. The caller checks who may read it."""
    now = now or timezone.now()
    booking = opinion.booking
    clinic = booking.clinic
    texts = [opinion.findings, opinion.recommended_treatment, booking.service_title, clinic.title,
             booking.user.get_full_name(), booking.request_note, _("Findings")]
    pdf = _Opinion(needs_cjk=any(CJK.search(str(t or "")) for t in texts))
    pdf.set_title(_("Clinician's opinion") + f" {booking.reference}")
    pdf.set_author("Emhana")
    pdf.add_page()
    pdf.para(clinic.title, size=14, style="B", gap=0.5)
    pdf.para(l10n.join_place(clinic.address, clinic.city.name), size=10, gap=3)
    pdf.para(_("CLINICIAN'S OPINION"), size=13, style="B", gap=2)
    author = opinion.author.get_full_name() if opinion.author else ""
    tz = clinic.tz
    pairs = [(_("Reference"), booking.reference), (_("Service"), booking.service_title),
             (_("Date"), date_format((opinion.sent_at or now).astimezone(tz).date(), "DATE_FORMAT"))]
    if author:
        pairs.append((_("Clinician"), author))
    pdf.rows(pairs)
    if booking.request_note:
        pdf.para(_("Your questions"), style="B", gap=0.5)
        pdf.para(booking.request_note, size=10, gap=2)
    pdf.para(_("Findings"), style="B", gap=0.5)
    pdf.para(opinion.findings, size=10, gap=2)
    pdf.para(_("Recommended treatment"), style="B", gap=0.5)
    pdf.para(opinion.recommended_treatment, size=10, gap=2)
    pdf.para(_("Can it be done at this clinic?"), style="B", gap=0.5)
    pdf.para(opinion.get_treatable_here_display(), size=10, gap=2)
    if opinion.indicative_price is not None:
        pdf.para(_("Indicative price"), style="B", gap=0.5)
        pdf.para(money(opinion.indicative_price, opinion.currency), size=10, gap=0.5)
        pdf.para(_("An estimate from your records, not a quote: the clinic confirms the price after reviewing "
                   "your case in full."), size=9, gap=2)
    pdf.para(_("This opinion is based on the records and information you sent; it does not replace an "
               "examination in person."), size=9, gap=2)
    if not pdf.has_unicode or (pdf.has_cjk is False and any(CJK.search(str(t or "")) for t in texts)):
        pdf.para("Note: this copy was produced without a font for some characters; they are shown as '?'. "
                 "Install fonts-dejavu-core and fonts-noto-cjk on the server.", size=8)
    return bytes(pdf.output())

"""Template tags of the consultation panels (registered as the ``consult`` library in settings.TEMPLATES):
``{% consult_patient_panel booking %}`` on the patient's booking page, ``{% consult_desk_panel booking %}`` in the
desk, ``{% consult_email_lines booking %}`` in booking emails (the reminders carry the join address), and
``{% opinion_next_step booking as text %}`` on the patient's dashboard and booking page (a delivered opinion)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from bookings.consult import dicom, services
from bookings.consult.models import SecondOpinion
from bookings.models import Booking, PatientProfile
from bookings.patients import records as record_service
from catalog.models import Offering
from portal import l10n

register = template.Library()


def _zone(name):
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _patient_zone(booking):
    profile = PatientProfile.objects.filter(user_id=booking.user_id).only("home_timezone").first()
    zone = _zone(getattr(profile, "home_timezone", "")) or _zone(booking.patient_timezone)
    return zone if zone and str(zone) != booking.clinic.zone_name else None


def _call(user, booking):
    state = services.call_state(user, booking)
    if state is None:
        return None
    clinic_tz = booking.clinic.tz
    patient_tz = _patient_zone(booking)
    times = {}
    if state.start:
        times = {
            "clinic_when": l10n.format_when(state.start, clinic_tz), "clinic_end": l10n.format_time(state.end, clinic_tz),
            "clinic_zone": booking.clinic.zone_label,
            "patient_when": l10n.format_when(state.start, patient_tz) if patient_tz else "",
            "patient_end": l10n.format_time(state.end, patient_tz) if patient_tz else "",
            "patient_zone": l10n.zone_label(patient_tz) if patient_tz else "",
            "opens": l10n.format_time(state.opens_at, clinic_tz),
        }
    return {"state": state, "lead": services.lead_minutes(), **times}


def _studies(user, booking, ip=None):
    rows = []
    for record in booking.records.order_by("uploaded_at"):
        if not dicom.is_study(record):
            continue
        try:
            rows.append({"record": record, "summary": dicom.summary(user, record, ip=ip)})
        except record_service.RecordUnavailable:
            continue
    return rows


@register.inclusion_tag("consult/_patient_panel.html", takes_context=True)
def consult_patient_panel(context, booking):
    request = context.get("request")
    user = getattr(request, "user", None)
    kind = booking.offering.kind
    opinion = services.opinion_for_patient(booking) if user and booking.user_id == user.pk else None
    can_request = bool(opinion and opinion.suggested_offering_id and opinion.treatable_here != SecondOpinion.NO)
    return {
        "booking": booking, "call": _call(user, booking) if kind == Offering.CONSULTATION else None,
        "opinion": opinion, "can_request": can_request, "is_opinion": kind == Offering.SECOND_OPINION,
        "studies": _studies(user, booking) if user and booking.user_id == user.pk else [],
        "csrf_token": context.get("csrf_token"), "request": request,
    }


@register.inclusion_tag("consult/_desk_panel.html", takes_context=True)
def consult_desk_panel(context, booking):
    request = context.get("request")
    user = getattr(request, "user", None)
    opinion = SecondOpinion.objects.filter(booking=booking).select_related("suggested_offering__page",
                                                                            "request").first()
    return {
        "booking": booking, "call": _call(user, booking), "opinion": opinion,
        "can_write": services.can_write_opinion(booking) and not (opinion and opinion.sent),
        "studies": _studies(user, booking), "csrf_token": context.get("csrf_token"),
    }


@register.simple_tag
def opinion_next_step(booking) -> str:
    """For a second opinion whose opinion was delivered (completed), what the patient's pages say instead of the
    treatment's "your treatment is complete"; "" for any other booking (the pages keep their own next step)."""
    if booking.state != Booking.COMPLETED or booking.offering.kind != Offering.SECOND_OPINION:
        return ""
    return _("The clinician's opinion is ready: open your booking to read it and download it as a PDF.")


@register.simple_tag
def consult_email_lines(booking) -> str:
    """For a consultation: where to join, as plain text lines (our join address, never the room itself)."""
    if booking.offering.kind != Offering.CONSULTATION:
        return ""
    url = settings.SITE_URL + reverse("consultation_join", args=[booking.reference])
    return "\n" + _("This is an online consultation (video call). Join it here from %(minutes)d minutes before "
                    "the start; sign in with your account:") % {"minutes": services.lead_minutes()} + f"\n{url}\n"


@register.inclusion_tag("consult/_service_offers.html", takes_context=True)
def consult_offers(context, offerings):
    """The service page's "talk to a specialist before you travel": its consultations and second opinions."""
    before = sorted((o for o in offerings if o.kind != Offering.TREATMENT), key=lambda o: (o.kind, o.price))
    return {"before": before, "currency": context.get("currency"), "request": context.get("request")}

"""Who sees a consultation's room link and when; writing, sending and turning an opinion into a request.

The link is shown only to the patient who booked and to staff of the booking's clinic, only for a paid
(confirmed) booking whose session is not cancelled, and only from ``CONSULTATION_LINK_LEAD_MINUTES`` before
the session until its end. Pages and emails carry our own join address (``consultation_join``), which
redirects to the room under the same checks: the room's name is not in any email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.consult.dicom import seekable
from bookings.consult.models import Consultation, SecondOpinion
from bookings.errors import BookingError, InvalidTransition
from bookings.lifecycle import services as lifecycle
from bookings.lifecycle.states import locked, transition
from bookings.models import Appointment, Booking, ClinicMembership, MedicalRecord
from bookings.patients import consent
from bookings.patients import records as record_service
from bookings.review import services as review
from catalog.models import Offering

log = logging.getLogger("emhana.consult")

LIVE_SESSION = {Appointment.BOOKED, Appointment.ATTENDED}


def _now() -> datetime:
    """The clock the link rules read (tests move it without moving Django's sessions)."""
    return timezone.now()


def lead_minutes() -> int:
    return int(getattr(settings, "CONSULTATION_LINK_LEAD_MINUTES", 10))


def is_consultation(booking: Booking) -> bool:
    return booking.offering.kind == Offering.CONSULTATION


def is_second_opinion(booking: Booking) -> bool:
    return booking.offering.kind == Offering.SECOND_OPINION


def room_for(booking: Booking) -> Consultation:
    """The booking's room, made once (racing first requests end with the same room)."""
    existing = Consultation.objects.filter(booking=booking).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return Consultation.objects.create(booking=booking)
    except IntegrityError:
        return Consultation.objects.get(booking=booking)


def room_url(consultation: Consultation) -> str:
    """Jitsi Meet at CONSULTATION_VIDEO_BASE_URL, or another provider's CONSULTATION_VIDEO_LINK_TEMPLATE."""
    template = getattr(settings, "CONSULTATION_VIDEO_LINK_TEMPLATE", "") or ""
    if template:
        return template.replace("{room}", consultation.room)
    base = (getattr(settings, "CONSULTATION_VIDEO_BASE_URL", "") or "https://meet.jit.si").rstrip("/")
    return f"{base}/{consultation.room}"


def is_party(user, booking: Booking) -> bool:
    """The patient who booked, or a staff member of the booking's clinic."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if booking.user_id == user.pk:
        return True
    return ClinicMembership.objects.filter(user=user, clinic_id=booking.clinic_id).exists()


def session(booking: Booking) -> Appointment | None:
    return booking.appointments.filter(status__in=LIVE_SESSION).order_by("start").first()


@dataclass
class CallState:
    """What a party sees about the call now: ``url`` only inside the window."""

    start: datetime | None
    end: datetime | None
    opens_at: datetime | None
    status: str  # "unpaid", "cancelled", "early", "open", "ended"
    url: str = ""


def call_state(user, booking: Booking, now: datetime | None = None) -> CallState | None:
    """None for anyone who is not a party or a booking that is not a consultation."""
    if not is_consultation(booking) or not is_party(user, booking):
        return None
    now = now or _now()
    appointment = session(booking)
    if booking.state in (Booking.CANCELLED, Booking.REFUNDED, Booking.EXPIRED, Booking.DECLINED):
        return CallState(None, None, None, "cancelled")
    if appointment is None:
        return CallState(None, None, None, "cancelled" if booking.state == Booking.COMPLETED else "unpaid")
    opens = appointment.start - timedelta(minutes=lead_minutes())
    state = CallState(appointment.start, appointment.end, opens, "early")
    if booking.state not in (Booking.CONFIRMED, Booking.COMPLETED):
        state.status = "unpaid"
    elif now >= appointment.end:
        state.status = "ended"
    elif now >= opens:
        state.status = "open"
        state.url = room_url(room_for(booking))
    return state


def join_url(user, booking: Booking, now: datetime | None = None) -> str:
    state = call_state(user, booking, now)
    return state.url if state else ""


# --------------------------------------------------------------------------------- second opinion


def can_write_opinion(booking: Booking) -> bool:
    """Opinions are written on second-opinion requests, and after a consultation's call."""
    if is_second_opinion(booking):
        return booking.state in (Booking.REQUESTED, Booking.UNDER_REVIEW)
    if is_consultation(booking):
        return booking.state in (Booking.CONFIRMED, Booking.COMPLETED)
    return False


def treatment_offerings(booking: Booking):
    """The treatments of the booking's clinic a patient may be pointed to: the same service first."""
    qs = (Offering.objects.bookable().filter(clinic_id=booking.clinic_id, kind=Offering.TREATMENT)
          .select_related("page"))
    same = list(qs.filter(page_id=booking.offering.page_id))
    return same + [o for o in qs.exclude(page_id=booking.offering.page_id).order_by("page__title")]


def save_opinion(booking: Booking, author, *, findings, recommended_treatment, treatable_here, indicative_price,
                 suggested_offering, send: bool) -> SecondOpinion:
    """Write (or rewrite, until sent) the opinion; ``send`` delivers it to the patient and emails them once (the
    thread's message, in the patient's language). Sending a second opinion's opinion completes the booking
    (``deliver_opinion``); a consultation's state is its call's."""
    if not can_write_opinion(booking):
        raise BookingError(_("An opinion cannot be written on this booking."), code="not_opinion")
    if suggested_offering is not None and suggested_offering.clinic_id != booking.clinic_id:
        raise BookingError(_("Choose one of your clinic's treatments."), code="other_clinic")
    with transaction.atomic():
        booking = locked(booking)
        opinion = SecondOpinion.objects.select_for_update().filter(booking=booking).first()
        if opinion is not None and opinion.sent:
            raise BookingError(_("This opinion was already sent to the patient."), code="opinion_sent")
        if not can_write_opinion(booking):  # again under the lock: the patient may have cancelled meanwhile
            raise BookingError(_("An opinion cannot be written on this booking."), code="not_opinion")
        opinion = opinion or SecondOpinion(booking=booking)
        opinion.findings = findings
        opinion.recommended_treatment = recommended_treatment
        opinion.treatable_here = treatable_here
        opinion.indicative_price = indicative_price
        opinion.currency = booking.currency
        opinion.suggested_offering = suggested_offering
        opinion.author = author
        if send:
            opinion.sent_at = timezone.now()
        opinion.save()
        if booking.state == Booking.REQUESTED:
            booking = review.start_review(booking, author)
        if send:
            if is_second_opinion(booking):
                deliver_opinion(booking, author)
            # the one email of the delivery ("a new message from the clinic", in the patient's language); the
            # message itself is written in the patient's language too, not in the clinician's
            with translation.override(booking.language or settings.LANGUAGE_CODE):
                text = _("The clinician's opinion is ready: open your booking to read it and download it as a PDF.")
            lifecycle.post_message(booking, author, text, from_clinic=True)
    return opinion


# Not a kind the patient's emails know (bookings.notifications.mail.PATIENT_KINDS): the transition's own
# notification sends nothing, so the delivery's one email stays the thread's message (and a future "treatment
# completed" email is never sent for an opinion).
OPINION_DELIVERED = "opinion_delivered"


def deliver_opinion(booking: Booking, actor) -> Booking:
    """A second opinion whose opinion was sent is done: UNDER_REVIEW → COMPLETED. The caller holds the row lock.

    The only way a booking under review is completed: refused for anything but a second opinion with a sent
    opinion (bookings.lifecycle.states.KIND_TRANSITIONS allows the move for second opinions only, too)."""
    if booking.state == Booking.COMPLETED and is_second_opinion(booking):
        return booking
    if not is_second_opinion(booking):
        raise InvalidTransition(_("Only a second opinion is completed by delivering the opinion."),
                                code="invalid_state")
    if not SecondOpinion.objects.filter(booking=booking, sent_at__isnull=False).exists():
        raise BookingError(_("There is no opinion on this booking yet."), code="no_opinion")
    return transition(booking, Booking.COMPLETED, actor, "opinion delivered", notify=OPINION_DELIVERED)


def opinion_for_patient(booking: Booking) -> SecondOpinion | None:
    return SecondOpinion.objects.filter(booking=booking, sent_at__isnull=False).select_related(
        "suggested_offering__page", "request").first()


def request_from_opinion(user, booking: Booking, ip: str | None = None) -> Booking:
    """One click: the suggested treatment is requested, with the opinion's records carried over (copied through
    the access-checked, logged record read and the checked record store). Idempotent."""

    if booking.user_id != user.pk:
        raise BookingError(_("This is not your booking."), code="not_yours")
    stored: list[MedicalRecord] = []
    try:
        return _request_from_opinion(user, booking, ip, stored)
    except Exception:
        for record in stored:  # the transaction rolled back: remove the copied files too
            record.file.storage.delete(record.file.name)
        raise


def _request_from_opinion(user, booking, ip, stored):
    with transaction.atomic():
        opinion = SecondOpinion.objects.select_for_update().filter(booking=booking, sent_at__isnull=False).first()
        if opinion is None:
            raise BookingError(_("There is no opinion on this booking yet."), code="no_opinion")
        if opinion.request_id:
            return opinion.request
        offering = opinion.suggested_offering
        if offering is None or opinion.treatable_here == SecondOpinion.NO:
            raise BookingError(_("The clinician did not suggest a treatment at this clinic."), code="no_treatment")
        note = _("Requested after the clinician's opinion (%(ref)s).") % {"ref": booking.reference}
        questionnaire = dict(booking.questionnaire or {})
        questionnaire["opinion_findings"] = opinion.findings
        questionnaire["opinion_recommendation"] = opinion.recommended_treatment
        if offering.review_required:
            request = review.request_treatment(user, offering, note=note, questionnaire=questionnaire)
            consent.give(request, user, ip=ip)  # the patient ticked it beside the button (views.opinion_to_request)
        else:
            raise BookingError(_("This treatment is booked directly: choose a date on its page."), code="direct")
        for record in MedicalRecord.objects.filter(booking=booking, owner=user).order_by("uploaded_at"):
            handle = record_service.read_record(user, record, ip=ip, action="copy")
            with handle, seekable(handle, max_memory=0) as readable:
                copy = File(readable, name=record.original_name)
                copy.size = record.size
                stored.append(record_service.store_record(
                    user, copy, booking=request, description=record.description or _("From the opinion request")))
        opinion.request = request
        opinion.save(update_fields=["request"])
    return request

"""A refused visa: the patient sends the refusal letter; the clinic's coordinator confirms it; then the booking is
cancelled and refunded in full by the one refund rule (cancellation.refund_due / cancel_booking).

The letter goes through the medical records' upload checks (bookings.patients.records.store_record: type
sniffed from content, size, rate, quota, private storage) and is attached to the booking, so the clinic's staff
read it through the access-checked, access-logged record view, and no one else can.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.errors import BookingError
from bookings.lifecycle import cancellation
from bookings.lifecycle.reasons import VISA_REFUSED
from bookings.models import Booking, ClinicMembership, VisaRefusal
from bookings.patients.records import store_record

log = logging.getLogger("emhana.bookings")

CLAIMABLE = {Booking.QUOTED, Booking.AWAITING_PAYMENT, Booking.CONFIRMED}


def waiting_claim(booking) -> VisaRefusal | None:
    return VisaRefusal.objects.filter(booking=booking, status=VisaRefusal.WAITING).select_related("letter").first()


def can_claim(booking) -> bool:
    return booking.state in CLAIMABLE and booking.can_cancel("patient", VISA_REFUSED) and waiting_claim(booking) is None


def claim(booking: Booking, user, letter_file, note: str = "") -> VisaRefusal:
    """Store the refusal letter (with the records' checks) and ask the clinic to confirm. Nothing is refunded
    yet. Raises BookingError, or records.RecordRejected with a message for the patient."""
    if booking.user_id != getattr(user, "pk", None):
        raise BookingError(_("This booking is not yours."), code="not_yours")
    if not can_claim(booking):
        raise BookingError(_("This booking cannot be refunded for a visa refusal now."), code="refusal_closed")
    record = store_record(user, letter_file, booking=booking, description=str(_("Visa refusal letter")))
    try:
        with transaction.atomic():
            return VisaRefusal.objects.create(booking=booking, letter=record, note=(note or "").strip()[:2000])
    except IntegrityError:
        record.file.delete(save=False)
        record.delete()
        raise BookingError(_("The clinic already has your refusal letter and will confirm it soon."),
                           code="refusal_waiting") from None


def _check_staff(claim_row: VisaRefusal, actor):
    if not ClinicMembership.objects.filter(user=actor, clinic_id=claim_row.booking.clinic_id).exists():
        raise BookingError(_("Only the clinic's staff can decide this."), code="not_staff")


def confirm(claim_row: VisaRefusal, actor, note: str = ""):
    """The coordinator has read the letter: cancel the booking and refund it in full. Idempotent."""
    with transaction.atomic():
        row = VisaRefusal.objects.select_for_update().select_related("booking").get(pk=claim_row.pk)
        _check_staff(row, actor)
        if row.status != VisaRefusal.WAITING:
            return row, None
    booking, quote = cancellation.cancel_booking(row.booking, actor, VISA_REFUSED, refusal_confirmed=True)
    with transaction.atomic():
        row = VisaRefusal.objects.select_for_update().get(pk=row.pk)
        if row.status == VisaRefusal.WAITING:
            row.status = VisaRefusal.CONFIRMED
            row.refunded = quote.amount
            row.decided_by = actor
            row.decided_at = timezone.now()
            row.decision_note = (note or "").strip()[:2000]
            row.save()
    log.info("booking %s: visa refusal confirmed by %s, refund %s", booking.reference, actor.pk, quote.amount)
    return row, quote


def reject(claim_row: VisaRefusal, actor, note: str) -> VisaRefusal:
    """The letter does not show a refusal (or is not readable): tell the patient why; nothing is refunded."""
    note = (note or "").strip()
    if not note:
        raise BookingError(_("Please tell the patient why the letter is not accepted."), code="reason")
    with transaction.atomic():
        row = VisaRefusal.objects.select_for_update().select_related("booking").get(pk=claim_row.pk)
        _check_staff(row, actor)
        if row.status != VisaRefusal.WAITING:
            return row
        row.status = VisaRefusal.REJECTED
        row.decided_by = actor
        row.decided_at = timezone.now()
        row.decision_note = note[:2000]
        row.save()
    return row

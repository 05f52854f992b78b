"""Consent, per booking, to process the patient's health data and share it with the booking's clinic.

Asked in the request form (before the answers and files reach the clinic) and when a patient attaches a file to
a booking that has none. What is stored is what the patient saw: the text, its version and its language.
Withdrawing stops the sharing from then on: the clinic's staff no longer see the booking's questionnaire,
records or passport details (``staff_may_read``), and the booking says why. A booking kept under a legal
obligation after the patient erased their account (``Restriction``) stays readable by its clinic only.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from bookings.models import BookingEvent, ClinicMembership, Consent, Restriction

# Bump when the text below changes in meaning: stored consents keep the version (and text) they agreed to.
VERSION = "2026-12-v1"


def text(clinic_title: str) -> str:
    return _("I agree that Emhana processes the health data I give for this booking (my answers about my "
             "condition, my medical files and my passport details) and shares them with %(clinic)s so that its "
             "clinicians can assess and treat me. I can withdraw this consent at any time on the booking's page; "
             "the clinic then no longer sees them, except what the law obliges it to keep about care already "
             "given.") % {"clinic": clinic_title}


def label() -> str:
    return _("I agree to share my health data with the clinic (see the text above).")


def live(booking) -> Consent | None:
    return Consent.objects.filter(booking=booking, withdrawn_at__isnull=True).first()


def has_consent(booking) -> bool:
    return Consent.objects.filter(booking_id=booking.pk, withdrawn_at__isnull=True).exists()


def give(booking, user, ip: str | None = None, language: str | None = None) -> Consent:
    """Record the patient's consent for ``booking`` in their current language (idempotent while it stands)."""
    if booking.user_id != user.pk:
        raise PermissionError("Only the patient can consent for their booking.")
    existing = live(booking)
    if existing is not None:
        return existing
    language = language or get_language() or "en"
    try:
        with transaction.atomic():
            return Consent.objects.create(booking=booking, user=user, version=VERSION, language=language,
                                          text=text(booking.clinic.title), ip=ip)
    except IntegrityError:  # a parallel request recorded it first
        return live(booking)


def withdraw(booking, user) -> bool:
    """Withdraw the standing consent; True if there was one."""
    if booking.user_id != user.pk:
        raise PermissionError("Only the patient can withdraw their consent.")
    with transaction.atomic():
        changed = Consent.objects.filter(booking=booking, withdrawn_at__isnull=True).update(
            withdrawn_at=timezone.now())
        if changed:
            BookingEvent.objects.create(booking=booking, from_state=booking.state, to_state=booking.state, actor=user,
                                        note="consent withdrawn")
    return bool(changed)


def staff_may_read(user, booking) -> bool:
    """May this clinic staff member see the booking's health data? A member of the booking's clinic, and the
    patient's consent stands (or the booking is kept under a legal obligation after erasure)."""
    if booking is None or user is None or not getattr(user, "is_authenticated", False):
        return False
    if not ClinicMembership.objects.filter(user=user, clinic_id=booking.clinic_id).exists():
        return False
    if has_consent(booking):
        return True
    return Restriction.objects.filter(booking_id=booking.pk).exists()

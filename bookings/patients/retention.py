"""How long patients' data is kept, applied every night by Celery beat (``bookings.tasks.apply_retention``).

* Requests that never became a booking (requested, under review, quoted, declined, expired, or cancelled with
  no payment) are deleted with their files ``RETENTION_UNCONFIRMED_DAYS`` after their last change (default 180).
* Accounts of patients unused for ``RETENTION_INACTIVE_DAYS`` (default 3 years; last sign-in, or sign-up if
  never) are warned by email, and erased ``RETENTION_WARNING_DAYS`` later (default 30) unless the patient signs
  in meanwhile (``bookings.patients.privacy.erase_account``: what the law obliges clinics to keep is restricted).
  Staff accounts are never erased this way.
* Finished data exports are deleted when their link expires.

Each step is idempotent: running it twice, or after an interruption, changes nothing more.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.models import Booking, ClinicMembership, MedicalRecord, PatientProfile, Payment, RetentionNotice

log = logging.getLogger("emhana.privacy")

UNCONFIRMED_STATES = (Booking.REQUESTED, Booking.UNDER_REVIEW, Booking.QUOTED, Booking.DECLINED, Booking.EXPIRED,
                      Booking.CANCELLED)


def purge_unconfirmed(now=None) -> int:
    """Delete old requests that never became a paid booking, with their records' files. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RETENTION_UNCONFIRMED_DAYS)
    paid = Payment.objects.values("booking_id")
    stale = (Booking.objects.filter(state__in=UNCONFIRMED_STATES, updated_at__lt=cutoff)
             .exclude(pk__in=paid).exclude(restriction__isnull=False))
    count = 0
    for booking in stale.iterator():
        names = []
        with transaction.atomic():
            for record in MedicalRecord.objects.filter(booking=booking):
                names.append(record.file.name)
                record.delete()
            booking.holds.all().delete()
            booking.delete()
        for name in names:
            if name:
                MedicalRecord._meta.get_field("file").storage.delete(name)
        count += 1
    if count:
        log.info("retention: %d unconfirmed requests purged", count)
    return count


def _staff_ids():
    return ClinicMembership.objects.values("user_id")


def inactive_patients(now=None):
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RETENTION_INACTIVE_DAYS)
    User = get_user_model()
    return (User.objects.filter(is_active=True, is_staff=False, is_superuser=False)
            .exclude(pk__in=_staff_ids())
            .filter(Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff)))


def _warn(user, erase_after):
    profile = PatientProfile.objects.filter(user=user).only("preferred_language").first()
    language = getattr(profile, "preferred_language", "") or "en"
    with translation.override(language):
        subject = _("Your %(site)s account will be deleted") % {"site": settings.SITE_NAME}
        body = _("You have not used your %(site)s account for a long time. To protect your data we will delete it "
                 "on %(date)s, with your bookings and medical files, except what clinics must keep by law about care "
                 "already given. To keep your account, simply sign in before then: %(link)s") % {
            "site": settings.SITE_NAME, "date": erase_after.date().isoformat(), "link": settings.SITE_URL}
    EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]).send()


def warn_and_erase_inactive(now=None) -> dict:
    from bookings.patients.privacy import erase_account

    now = now or timezone.now()
    warned = erased = 0
    # a patient who signed in after the warning keeps the account: the notice goes
    for notice in RetentionNotice.objects.select_related("user"):
        last = notice.user.last_login
        if last is not None and last > notice.warned_at:
            notice.delete()
    for user in inactive_patients(now).filter(retention_notice__isnull=True):
        erase_after = now + timedelta(days=settings.RETENTION_WARNING_DAYS)
        notice, created = RetentionNotice.objects.get_or_create(user=user, defaults={"warned_at": now,
                                                                                      "erase_after": erase_after})
        if created:
            _warn(user, erase_after)
            warned += 1
    for notice in RetentionNotice.objects.filter(erase_after__lte=now).select_related("user"):
        user = notice.user
        last = user.last_login
        if last is not None and last > notice.warned_at:
            continue
        erase_account(user)
        erased += 1
    return {"warned": warned, "erased": erased}


def apply(now=None) -> dict:
    from bookings.patients.export import expire_exports

    now = now or timezone.now()
    result = {"purged": purge_unconfirmed(now)}
    result.update(warn_and_erase_inactive(now))
    result["exports_expired"] = expire_exports(now)
    return result


@shared_task(acks_late=True, name="bookings.tasks.apply_retention")
def apply_retention():
    return apply()

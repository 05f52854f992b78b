"""How long patients' data is kept, applied every night by Celery beat (``bookings.tasks.apply_retention``).

* Requests that never became a booking (requested, under review, quoted, declined, expired, or cancelled with
  no payment) are deleted with their files ``RETENTION_UNCONFIRMED_DAYS`` after their last change (default 180).
* Accounts of patients unused for ``RETENTION_INACTIVE_DAYS`` (default 3 years; last sign-in, or sign-up if
  never) are warned by email, and erased ``RETENTION_WARNING_DAYS`` later (default 30) unless the patient signs
  in meanwhile (``bookings.patients.privacy.erase_account``: what the law obliges clinics to keep is restricted).
  Staff accounts are never erased this way.
* Finished data exports are deleted when their link expires.
* Processed payment-provider events are deleted ``RETENTION_WEBHOOK_DAYS`` after they arrived (default 90).
* What was kept after an erasure under a legal obligation (``Restriction``) is deleted the day after its end date
  (``keep_until``): the booking with its questionnaire, notes, quotes, sessions, consents, state history, access log,
  payments and refunds (kept under the same obligation and end date, and a payment cannot outlive its booking), its
  medical records and their encrypted files (removed from storage once the deletion is committed), the
  restriction with the name and date of birth it kept; and the anonymised account once nothing is kept for it.

Each step is idempotent: running it twice, or after an interruption, changes nothing more.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.models import (
    Booking,
    ClinicMembership,
    Hold,
    MedicalRecord,
    PatientProfile,
    Payment,
    RecordAccess,
    Refund,
    Restriction,
    RetentionNotice,
    VisaRefusal,
    WebhookEvent,
)
from bookings.patients.export import expire_exports
from bookings.patients.privacy import ERASED_EMAIL_DOMAIN, erase_account, is_erased_account

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


def _delete_stored_files(names):
    """Remove files from private storage (run once the deletion of their rows is committed). A file that cannot be
    removed is logged by its random file name only (the record's id) and left for the operator."""
    storage = MedicalRecord._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except OSError:
            log.exception("retention: could not remove the stored file of record %s", name.rsplit("/", 1)[-1])


def delete_emptied_erased_accounts() -> int:
    """Delete the accounts that erasure kept (anonymised, disabled) only for their restricted bookings, once none is
    left, as erasure does at once for an account with nothing retained. Idempotent; returns how many."""
    User = get_user_model()
    count = kept = 0
    emptied = (User.objects.filter(is_active=False, email__endswith="@" + ERASED_EMAIL_DOMAIN)
               .exclude(pk__in=Booking.objects.values("user_id")))
    for user in emptied.iterator():
        if not is_erased_account(user):
            continue
        try:
            with transaction.atomic():
                if Booking.objects.filter(user=user).exists():
                    continue
                RecordAccess.objects.filter(patient=user)._purge()
                user.delete()
            count += 1
        except ProtectedError:
            kept += 1
    if kept:
        log.warning("retention: %d erased accounts are still referenced elsewhere and were kept", kept)
    return count


def expire_restricted(now=None) -> dict:
    """Delete what was restricted at erasure once its end date (``Restriction.keep_until``, kept through that day)
    has passed: one transaction per booking, its files removed from storage after it commits; then the anonymised
    accounts left with nothing. Idempotent (a second run finds nothing). Returns counts of what was deleted."""
    now = now or timezone.now()
    today = now.date()  # keep_until was set from a UTC date (privacy.erase_account)
    counts = {"restricted_expired": 0, "restricted_records_deleted": 0, "restricted_payments_deleted": 0}
    due = list(Restriction.objects.filter(keep_until__lt=today).order_by("booking_id")
               .values_list("booking_id", flat=True))
    for booking_id in due:
        with transaction.atomic():
            # locked and checked again: a concurrent run (or a changed end date) never deletes twice or early
            if not Restriction.objects.select_for_update().filter(booking_id=booking_id,
                                                                  keep_until__lt=today).exists():
                continue
            booking = Booking.objects.select_for_update().get(pk=booking_id)
            records = list(MedicalRecord.objects.filter(booking=booking))
            record_ids = [r.pk for r in records]
            # the access log of what is deleted (as erasure does), before the rows it points to
            RecordAccess.objects.filter(Q(booking=booking) | Q(record_id__in=record_ids)
                                        | Q(target__in=[str(pk) for pk in record_ids]))._purge()
            VisaRefusal.objects.filter(Q(booking=booking) | Q(letter_id__in=record_ids)).delete()  # protects letters
            names = [r.file.name for r in records if r.file.name]
            for record in records:
                record.delete()
            Refund.objects.filter(payment__booking=booking).delete()
            _total, deleted = Payment.objects.filter(booking=booking).delete()
            Hold.objects.filter(booking=booking).delete()
            booking.delete()  # its restriction, consents, quotes, events, messages, sessions, extras go with it
            counts["restricted_expired"] += 1
            counts["restricted_records_deleted"] += len(records)
            counts["restricted_payments_deleted"] += deleted.get(Payment._meta.label, 0)
            if names:
                transaction.on_commit(partial(_delete_stored_files, names))
    counts["erased_accounts_deleted"] = delete_emptied_erased_accounts()
    if counts["restricted_expired"] or counts["erased_accounts_deleted"]:
        log.info("retention: %(restricted_expired)d restricted bookings past their end date deleted "
                 "(%(restricted_records_deleted)d medical records, %(restricted_payments_deleted)d payments), "
                 "%(erased_accounts_deleted)d erased accounts deleted", counts)
    return counts


def expire_webhook_events(now=None) -> int:
    """Stored payment-provider events (their payloads name bookings and cards' countries) are kept only as long as
    they guard against a redelivery: ``RETENTION_WEBHOOK_DAYS`` (default 90; Stripe retries for 3 days). An event
    never processed is kept for whoever investigates it."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RETENTION_WEBHOOK_DAYS)
    deleted, _by_model = WebhookEvent.objects.filter(processed_at__isnull=False, received_at__lt=cutoff).delete()
    return deleted


def apply(now=None) -> dict:
    now = now or timezone.now()
    result = {"purged": purge_unconfirmed(now)}
    result.update(warn_and_erase_inactive(now))
    result["exports_expired"] = expire_exports(now)
    result.update(expire_restricted(now))
    result["webhook_events_deleted"] = expire_webhook_events(now)
    log.info("retention run: %s", result)
    return result


@shared_task(acks_late=True, name="bookings.tasks.apply_retention")
def apply_retention():
    return apply()

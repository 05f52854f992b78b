"""Who read what (the data access log) and erasure of a patient's account.

The log (``RecordAccess``) gets one row for every read of a medical record, a questionnaire, passport fields or
a visa letter by anyone other than the patient: who, what, when, the client's real address (``portal.net``),
for which booking. Rows are only ever added: the model refuses changes and deletion, the Django admin shows it
read-only and no view edits it. The one exception is erasure (below), which removes the log of what is erased.

Erasure keeps only what the law obliges the clinics to keep: the bookings where care was given or money moved
(their medical records, questionnaire, quotes, sessions, payments and refunds), each marked ``Restriction``
with its legal reason and end date, visible only to that clinic. Everything else goes, files included.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from importlib import import_module

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import ngettext

from bookings.models import (
    Booking,
    Consent,
    DataExport,
    Hold,
    MedicalRecord,
    PatientProfile,
    Payment,
    RecordAccess,
    Restriction,
    RetentionNotice,
)
from bookings.patients.models import PrivateFileStorage
from portal.net import clean_ip

log = logging.getLogger("emhana.privacy")

RETAINED_STATES = (Booking.CONFIRMED, Booking.COMPLETED, Booking.REFUNDED)
ERASED_EMAIL_DOMAIN = "erased.invalid"


# --------------------------------------------------------------------------------- the access log


def log_access(user, kind: str, *, patient_id: int, booking=None, record=None, ip: str | None = None,
               action: str = "view") -> RecordAccess | None:
    """Add one row for a read by ``user`` of ``patient_id``'s data; nothing when the patient reads their own."""
    if user is None or not getattr(user, "is_authenticated", False) or user.pk == patient_id:
        return None
    return RecordAccess.objects.create(
        user=user, kind=kind, patient_id=patient_id, booking=booking, record=record, action=action,
        ip=clean_ip(ip), target=str(record.pk) if record is not None else "")


def accesses_for(patient):
    """What the patient sees on "Who opened my data": every read by someone else, newest first."""
    return (RecordAccess.objects.filter(patient=patient).exclude(user=patient)
            .select_related("user", "booking__clinic").order_by("-at", "-id"))


# --------------------------------------------------------------------------------- erasure


def legal_reason() -> str:
    years = settings.RESTRICTED_RECORDS_YEARS
    return ngettext("Medical and payment records of care given: the clinic must keep them by law for %(years)d year. "
                    "Hidden from everyone but the clinic; erased after the date shown.",
                    "Medical and payment records of care given: the clinic must keep them by law for %(years)d years. "
                    "Hidden from everyone but the clinic; erased after the date shown.", years) % {"years": years}


def retained_bookings(user):
    """The bookings the law obliges the clinic to keep: care given (confirmed, completed, refunded) or any
    payment made."""
    paid = Payment.objects.filter(booking__user=user).values("booking_id")
    return Booking.objects.filter(Q(user=user) & (Q(state__in=RETAINED_STATES) | Q(pk__in=paid))).distinct()


def _delete_record(record: MedicalRecord):
    name = record.file.name
    if name:
        record.file.storage.delete(name)
    record.delete()


def _identity(user) -> str:
    profile = PatientProfile.objects.filter(user=user).first()
    data = {"email": user.email}
    if profile is not None:
        data.update({"given_names": profile.given_names, "family_name": profile.family_name,
                     "date_of_birth": profile.date_of_birth.isoformat() if profile.date_of_birth else "",
                     "citizenship": profile.citizenship.code if profile.citizenship else ""})
    return json.dumps(data, ensure_ascii=False)


def _end_sessions(user):
    """Sign the user out everywhere: each of their sessions deleted through the session store, which clears the
    cached copy as well as the row (``SESSION_ENGINE`` is cached_db)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        try:
            if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
                store(session_key=session.session_key).delete()
        except Exception:  # noqa: BLE001 - an undecodable session is not this user's
            continue


def erase_account(user) -> dict:
    """Erase a patient's account: what is legally retained is restricted, the rest removed. Idempotent.

    Returns counts of what was done (for the log and the tests)."""
    User = get_user_model()
    user = User.objects.get(pk=user.pk)
    counts = {"restricted": 0, "bookings_deleted": 0, "records_deleted": 0}
    keep_until = (timezone.now() + timedelta(days=365 * settings.RESTRICTED_RECORDS_YEARS)).date()
    identity = _identity(user)
    files_to_delete = []
    with transaction.atomic():
        retained = list(retained_bookings(user))
        retained_ids = {b.pk for b in retained}
        for booking in retained:
            Restriction.objects.get_or_create(booking=booking, defaults={
                "reason": legal_reason(), "keep_until": keep_until, "identity": identity})
            booking.messages.all().delete()
            booking.request_note = ""
            booking.save(update_fields=["request_note"])
            counts["restricted"] += 1
        for record in MedicalRecord.objects.filter(owner=user).exclude(booking_id__in=retained_ids):
            files_to_delete.append(record.file.name)
            record.delete()
            counts["records_deleted"] += 1
        others = Booking.objects.filter(user=user).exclude(pk__in=retained_ids)
        Hold.objects.filter(Q(user=user) | Q(booking__in=others)).delete()
        for booking in others:
            booking.delete()
            counts["bookings_deleted"] += 1
        for export in DataExport.objects.filter(user=user):
            if export.file.name:
                files_to_delete.append(export.file.name)
            export.delete()
        PatientProfile.objects.filter(user=user).delete()  # companions go with it
        RetentionNotice.objects.filter(user=user).delete()
        Consent.objects.filter(user=user).exclude(booking_id__in=retained_ids).delete()
        RecordAccess.objects.filter(patient=user).exclude(booking_id__in=retained_ids)._purge()
        _forget_login(user)
        if retained_ids:
            user.email = erased_email(user.pk)
            setattr(user, User.USERNAME_FIELD, f"erased-{user.pk}")
            user.first_name = user.last_name = ""
            user.set_unusable_password()
            user.is_active = False
            user.save()
        else:
            RecordAccess.objects.filter(patient=user)._purge()
            user.delete()
    storage = PrivateFileStorage()
    for name in files_to_delete:
        if name:
            storage.delete(name)
    _end_sessions(user)
    log.info("account %s erased: %s", user.pk, counts)
    return counts


def erased_email(pk) -> str:
    return f"erased-{pk}@{ERASED_EMAIL_DOMAIN}"


def is_erased_account(user) -> bool:
    """An account erasure kept, anonymised and disabled, only because some of its bookings are restricted (the
    retention deletes it once they are gone: bookings.patients.retention.expire_restricted)."""
    return not user.is_active and user.email == erased_email(user.pk)


def _forget_login(user):
    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()

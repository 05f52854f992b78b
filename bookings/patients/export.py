"""A patient's copy of everything we hold about them: one ZIP with ``data.json`` (machine-readable) and the
original files, built by a Celery task, stored encrypted, downloadable by them from an expiring link that an
email (in their language) announces.

``data.json`` holds: the account, the profile and companions, every booking with its questionnaire, note,
state history, quotes, sessions, payments, refunds, messages and consents, the medical records' details (the
files themselves are under ``records/``), and the log of who else opened their data. Only rows that belong to
the patient are read (every query starts from their user), so nothing of anyone else can enter it.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import logging
import uuid
import zipfile
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.models import (
    Booking,
    Consent,
    DataExport,
    MedicalRecord,
    PatientProfile,
    Payment,
    RecordAccess,
    Refund,
)
from bookings.patients.records import download_name

log = logging.getLogger("emhana.privacy")

SKIP_FIELDS = {"idempotency_key", "passport_number_hash", "file"}


def _json(value):
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if hasattr(value, "code") and hasattr(value, "name"):  # django-countries Country
        return value.code
    return value


def row(obj, skip=()) -> dict:
    """The object's own columns (foreign keys as ids), JSON-ready."""
    out = {}
    for field in obj._meta.concrete_fields:
        if field.name in SKIP_FIELDS or field.name in skip:
            continue
        out[field.attname] = _json(field.value_from_object(obj))
    return out


def collect(user) -> tuple[dict, list[tuple[str, MedicalRecord]]]:
    """(the document, [(path in the ZIP, record)]) for ``user``."""
    profile = PatientProfile.objects.filter(user=user).first()
    bookings = []
    for booking in Booking.objects.filter(user=user).order_by("created_at"):
        data = row(booking)
        data["events"] = [row(e, skip=("booking",)) for e in booking.events.all()]
        data["quotes"] = [row(q) for q in booking.quotes.all()]
        data["sessions"] = [row(a) for a in booking.appointments.all()]
        data["payments"] = [row(p) for p in Payment.objects.filter(booking=booking)]
        data["refunds"] = [row(r) for r in Refund.objects.filter(payment__booking=booking)]
        data["messages"] = [{"from_clinic": m.from_clinic, "body": m.body, "at": _json(m.created_at)}
                            for m in booking.messages.all()]
        data["consents"] = [row(c) for c in Consent.objects.filter(booking=booking, user=user)]
        bookings.append(data)
    files, records = [], []
    for record in MedicalRecord.objects.filter(owner=user).order_by("uploaded_at"):
        path = f"records/{record.pk}-{download_name(record)}"
        data = row(record)
        data["file_in_zip"] = path
        records.append(data)
        files.append((path, record))
    accesses = [{"at": _json(a.at), "who": (a.user.email if a.user else ""), "what": a.kind, "action": a.action,
                 "booking_id": a.booking_id, "record": a.target, "ip": a.ip}
                for a in RecordAccess.objects.filter(patient=user).exclude(user=user).select_related("user")]
    document = {
        "format": "emhana-patient-export/1",
        "created_at": _json(timezone.now()),
        "account": {"id": user.pk, "email": user.email, "date_joined": _json(user.date_joined),
                    "last_login": _json(user.last_login)},
        "profile": row(profile, skip=("user",)) if profile else None,
        "companions": [row(c, skip=("profile",)) for c in profile.companions.all()] if profile else [],
        "bookings": bookings,
        "medical_records": records,
        "access_log": accesses,
    }
    return document, files


def build_zip(user) -> bytes:
    document, files = collect(user)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(document, ensure_ascii=False, indent=2, default=str))
        archive.writestr("README.txt", _("Everything Emhana holds about you: data.json (machine-readable JSON) and "
                                         "your medical files in records/, as you uploaded them.") + "\n")
        for path, record in files:
            try:
                with record.file.open("rb") as source, archive.open(path, "w") as target:
                    while chunk := source.read(1024 * 1024):
                        target.write(chunk)
            except FileNotFoundError:
                log.error("export for user %s: record %s missing from storage", user.pk, record.pk)
    return buffer.getvalue()


def request_export(user) -> DataExport:
    """Queue a new export (one in progress at a time)."""
    pending = DataExport.objects.filter(user=user, status=DataExport.PENDING).first()
    if pending is not None:
        return pending
    export = DataExport.objects.create(user=user)
    transaction.on_commit(lambda: build_patient_export.delay(str(export.pk)))
    return export


def link(export: DataExport, language: str) -> str:
    with translation.override(language):
        return settings.SITE_URL + reverse("privacy_export_download", args=[export.pk])


@shared_task(acks_late=True, name="bookings.tasks.build_patient_export")
def build_patient_export(export_id: str):
    """Build the ZIP and email the link. Idempotent: a ready export is not built or announced twice."""
    export = DataExport.objects.select_related("user").filter(pk=export_id).first()
    if export is None or export.status != DataExport.PENDING:
        return "skipped"
    user = export.user
    try:
        data = build_zip(user)
    except Exception:
        DataExport.objects.filter(pk=export.pk).update(status=DataExport.FAILED)
        raise
    export.file.save(f"{export.pk}.zip", ContentFile(data), save=False)
    now = timezone.now()
    export.size, export.status, export.ready_at = len(data), DataExport.READY, now
    export.expires_at = now + timedelta(hours=settings.DATA_EXPORT_HOURS)
    export.save()
    profile = PatientProfile.objects.filter(user=user).only("preferred_language").first()
    language = getattr(profile, "preferred_language", "") or "en"
    with translation.override(language):
        subject = _("Your data from %(site)s is ready") % {"site": settings.SITE_NAME}
        body = _("You asked for a copy of everything %(site)s holds about you. Download it here (sign in first); "
                 "the link works until %(until)s UTC:\n\n%(link)s\n\nIf you did not ask for this, sign in and "
                 "change your password.") % {"site": settings.SITE_NAME, "link": link(export, language),
                                              "until": export.expires_at.strftime("%Y-%m-%d %H:%M")}
    EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email]).send()
    return "ready"


def expire_exports(now=None) -> int:
    """Delete expired exports and their files (idempotent)."""
    now = now or timezone.now()
    count = 0
    for export in DataExport.objects.filter(expires_at__lte=now):
        if export.file.name:
            export.file.storage.delete(export.file.name)
        export.delete()
        count += 1
    return count

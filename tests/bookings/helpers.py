"""Helpers for the booking tests: free slots, booking and paying through the pages, a fake payment provider."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import date, timedelta
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from bookings.engine import slots
from bookings.payments import PaymentResult, RefundResult


def direct_offering():
    """The demo's PET-CT (direct booking, one session), or any direct single-session offering with resources."""
    from catalog.models import Offering

    qs = (Offering.objects.bookable().filter(review_required=False, sessions=1, resource_links__isnull=False)
          .select_related("clinic__city", "page").order_by("id"))
    offering = qs.filter(page__import_key="pet_ct_fdg").first() or qs.first()
    assert offering is not None, "the demo data has a direct single-session offering with resources"
    return offering


def review_offering_gamma():
    """The demo's Gamma Knife (review first, one session), or any review-first single-session offering."""
    from catalog.models import Offering

    qs = (Offering.objects.bookable().filter(review_required=True, sessions=1, resource_links__isnull=False)
          .select_related("clinic__city", "page").order_by("id"))
    offering = qs.filter(page__import_key__icontains="gamma_knife").first() or qs.first()
    assert offering is not None, "the demo data has a review-first offering with resources"
    return offering


QUESTIONNAIRE = {"diagnosis": "Vestibular schwannoma, 2.1 cm, MRI March 2026",
                 "prior_treatment": "none", "current_state": "Hearing loss on the left, walks unaided"}


def free_options(offering, days=45):
    today = timezone.now().astimezone(offering.clinic.tz).date()
    options = slots.offering_slots(offering, today, today + timedelta(days=days))
    assert options, f"{offering} has free slots in the next {days} days"
    return options


def local_day(offering, option) -> date:
    return option.start.astimezone(offering.clinic.tz).date()


def book(client, offering, option, key=None, lang=None):
    from django.utils import translation

    with translation.override(lang or translation.get_language()):
        url = reverse("book_offering", args=[offering.pk])
    return client.post(url, {"start": option.start.isoformat(), "client_key": key or uuid.uuid4().hex})


class FakeProvider:
    publishable_key = "pk_test_fake"

    def __init__(self, status="succeeded"):
        self.status = status
        self.refunds = []

    def create_and_confirm(self, *, amount, currency, payment_method, idempotency_key, metadata=None):
        secret = "pi_fake_secret_x" if self.status == "requires_action" else None
        return PaymentResult(status=self.status, intent_id=f"pi_{uuid.uuid4().hex[:16]}", amount=amount,
                             currency=currency, client_secret=secret,
                             error_code="card_declined" if self.status == "failed" else None)

    def retrieve(self, intent_id):
        return PaymentResult(status="succeeded", intent_id=intent_id, amount=0, currency="kzt")

    def refund(self, *, intent_id, amount, idempotency_key, metadata=None):
        self.refunds.append(amount)
        return RefundResult(refund_id=f"re_{uuid.uuid4().hex[:10]}", status="succeeded", amount=amount,
                            currency="kzt")


def pay(client, booking):
    return client.post(f"/api/v1/bookings/{booking.pk}/payments", data=json.dumps({"payment_method": "pm_card"}),
                       content_type="application/json")


# --- sample files for records -------------------------------------------------------------------

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def png_bytes():
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def jpeg_bytes():
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 30, 200)).save(out, "JPEG")
    return out.getvalue()


def dicom_bytes(tag=b"\x01"):
    # 128-byte preamble, the DICM magic, then a (meta) group length element
    return b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\xc8\x00\x00\x00" + tag * 64


def make_zip(entries, compression=zipfile.ZIP_DEFLATED):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def upload(name, data, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def stored_files(root: Path):
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []

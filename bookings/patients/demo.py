"""Demo patients for ``load_demo`` (idempotent; never in production): complete profiles (passport, diagnosis,
records, companions) and bookings in several states, so that the privacy features can be seen at work:
encrypted columns and files, consent (given, and once withdrawn), the access log ("who opened my data"),
export and erasure. Every value is invented and marked as demo."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from bookings.demo.users import demo_user
from bookings.engine import slots
from bookings.models import (
    Allocation,
    Appointment,
    Booking,
    ClinicMembership,
    Companion,
    Consent,
    MedicalRecord,
    PatientProfile,
    Quote,
    RecordAccess,
)
from catalog.models import Offering

DEMO_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
            b"% Demo MRI report - invented, not a real patient\ntrailer<</Root 1 0 R>>\n%%EOF\n")

PATIENTS = [
    # email, language, names, birth, citizenship, passport, zone, diagnosis, states
    ("patient.dilnoza@emhana.example", "uz", ("DILNOZA", "KARIMOVA"), date(1979, 4, 12), "UZ", "FA1234567",
     "Asia/Tashkent", "Vestibular schwannoma, 2.1 cm, left side (MRI March 2026) — demo",
     [Booking.REQUESTED, Booking.QUOTED, Booking.CONFIRMED]),
    ("patient.azamat@emhana.example", "ky", ("AZAMAT", "ASANOV"), date(1965, 11, 3), "KG", "AC7654321",
     "Asia/Bishkek", "Arteriovenous malformation, right parietal, 2.8 cm — demo",
     [Booking.UNDER_REVIEW, Booking.DECLINED]),
    ("patient.li.wei@emhana.example", "zh-hans", ("WEI", "LI"), date(1988, 2, 29), "CN", "E12345678",
     "Asia/Shanghai", "Trigeminal neuralgia, right, not helped by carbamazepine — demo",
     [Booking.REQUESTED]),
]


def _offering():
    return (Offering.objects.filter(review_required=True, is_active=True, resource_links__isnull=False)
            .select_related("clinic", "page").order_by("id").first())


def _confirm_with_session(booking, offering):
    today = timezone.now().astimezone(offering.clinic.tz).date()
    options = slots.offering_slots(offering, today + timedelta(days=60), today + timedelta(days=120))
    if not options:
        return
    option = options[0]
    for seq, (start, end) in enumerate(option.sessions, start=1):
        appointment = Appointment.objects.create(booking=booking, offering=offering, seq=seq, start=start, end=end,
                                                 status=Appointment.BOOKED)
        for link in offering.resource_links.select_related("resource"):
            Allocation.objects.create(appointment=appointment, resource=link.resource, start=start, end=end)


def load(created: list[str], password: str) -> None:
    offering = _offering()
    if offering is None:
        return
    coordinator = (ClinicMembership.objects.filter(clinic=offering.clinic).select_related("user").first())
    for email, language, (given, family), born, country, passport, zone, diagnosis, states in PATIENTS:
        user = demo_user(email, created, first_name=given.title(), last_name=family.title())
        profile, made = PatientProfile.objects.get_or_create(user=user, defaults={
            "given_names": given, "family_name": family, "date_of_birth": born, "citizenship": country,
            "passport_number": passport, "passport_expiry": date(2031, 6, 30), "phone": "+998 90 000 00 00",
            "preferred_language": language, "home_timezone": zone})
        if made:
            Companion.objects.create(profile=profile, given_names="ALISHER", family_name=family, date_of_birth=date(
                1977, 8, 1), citizenship=country, passport_number=passport[:2] + "7654321",
                passport_expiry=date(2030, 1, 31), relationship="spouse (demo)")
            created.append(f"demo patient {email}")
        if Booking.objects.filter(user=user).exists():
            continue
        for i, state in enumerate(states):
            booking = Booking.objects.create(
                user=user, offering=offering, clinic=offering.clinic, state=state, price=offering.price,
                deposit=offering.deposit, service_title=offering.page.title, language=language, patient_timezone=zone,
                questionnaire={"diagnosis": diagnosis, "prior_treatment": "none (demo)",
                               "current_state": "walks unaided, can travel (demo)"},
                request_note="Demo request: prefer a date after the holidays.")
            Consent.objects.create(booking=booking, user=user, version="2026-12-v1", language=language,
                                   text="(demo) consent to process health data and share it with the clinic")
            record = MedicalRecord(owner=user, booking=booking, original_name=f"MRI report {i + 1} (demo).pdf",
                                   content_type="application/pdf", size=len(DEMO_PDF),
                                   sha256=__import__("hashlib").sha256(DEMO_PDF).hexdigest(),
                                   description="Invented report for the demo")
            record.file.save(record.original_name, ContentFile(DEMO_PDF), save=False)
            record.save()
            if state == Booking.QUOTED:
                Quote.objects.create(booking=booking, version=1, price=offering.price, deposit=offering.deposit,
                                     treatment_plan="Single-session radiosurgery (demo)",
                                     window_start=timezone.now().date() + timedelta(days=30),
                                     window_end=timezone.now().date() + timedelta(days=60),
                                     valid_until=timezone.now() + timedelta(days=14), created_by=None)
            if state == Booking.DECLINED:
                booking.decline_reason = "The lesion is too large for radiosurgery; surgery advised (demo)."
                booking.save(update_fields=["decline_reason"])
            if state == Booking.CONFIRMED:
                _confirm_with_session(booking, offering)
            if coordinator is not None:  # the clinic opened the case: the patient sees it on "Who opened my data"
                for kind in (RecordAccess.QUESTIONNAIRE, RecordAccess.RECORD):
                    RecordAccess.objects.create(user=coordinator.user, patient=user, booking=booking, kind=kind,
                                                record=record if kind == RecordAccess.RECORD else None,
                                                action="view", ip="203.0.113.10")
            created.append(f"demo booking {booking.reference} ({state}) for {email}")
        if email == "patient.azamat@emhana.example":  # one patient withdrew consent for the declined request
            declined = Booking.objects.filter(user=user, state=Booking.DECLINED).first()
            if declined is not None:
                Consent.objects.filter(booking=declined).update(withdrawn_at=timezone.now())

"""Demo trip data for ``load_demo`` (idempotent; never in production): extras on the scarce-machine offerings and a
few others, the entry rules checked, and one patient waiting for a PET-CT start."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.utils import timezone

from bookings.models import AvailabilityException, OfferingExtra, PatientProfile, WaitlistEntry
from bookings.trip import entry
from catalog.models import Offering

# the clinic's note on each extra, in every language (a patient reads it in theirs)
TRANSFER_NOTE = {"en": "airport ↔ clinic (demo)", "ru": "аэропорт ↔ клиника (демо)", "kk": "әуежай ↔ клиника (демо)",
                 "ky": "аэропорт ↔ клиника (демо)", "uz": "aeroport ↔ klinika (demo)",
                 "tg": "фурудгоҳ ↔ клиника (намоишӣ)", "zh_hans": "机场 ↔ 医院（演示）"}
PER_DAY = {"en": "per day (demo)", "ru": "за день (демо)", "kk": "бір күнге (демо)", "ky": "бир күнгө (демо)",
           "uz": "bir kunga (demo)", "tg": "барои як рӯз (намоишӣ)", "zh_hans": "按天（演示）"}
HOTEL_NOTE = {"en": "partner hotel near the clinic (demo)", "ru": "гостиница-партнёр рядом с клиникой (демо)",
              "kk": "клиника маңындағы серіктес қонақүй (демо)", "ky": "клиниканын жанындагы өнөктөш мейманкана (демо)",
              "uz": "klinika yaqinidagi hamkor mehmonxona (demo)",
              "tg": "меҳмонхонаи шарик дар наздикии клиника (намоишӣ)", "zh_hans": "医院附近的合作酒店（演示）"}
DEMO = {"en": "(demo)", "ru": "(демо)", "kk": "(демо)", "ky": "(демо)", "uz": "(demo)", "tg": "(намоишӣ)",
        "zh_hans": "（演示）"}
# kind, language, price (tenge minor units), unit, paid, note
EXTRAS = [
    (OfferingExtra.TRANSFER, "", 1_500_000, OfferingExtra.PER_UNIT, OfferingExtra.AT_CLINIC, TRANSFER_NOTE),
    (OfferingExtra.INTERPRETER, "uz", 2_500_000, OfferingExtra.PER_UNIT, OfferingExtra.AT_CLINIC, PER_DAY),
    (OfferingExtra.INTERPRETER, "zh-hans", 3_000_000, OfferingExtra.PER_UNIT, OfferingExtra.AT_CLINIC, PER_DAY),
    (OfferingExtra.ACCOMMODATION, "", 2_200_000, OfferingExtra.PER_NIGHT, OfferingExtra.WITH_DEPOSIT, HOTEL_NOTE),
    (OfferingExtra.COMPANION_BED, "", 800_000, OfferingExtra.PER_NIGHT, OfferingExtra.AT_CLINIC, DEMO),
]
KEYWORDS = ("gamma_knife", "tomotherapy", "pet_ct", "cabg", "ivf")
WAITLIST_PATIENT = "waitlist.patient@emhana.example"


def load(created: list[str], password: str) -> None:
    entry.rules()  # the reviewed rules load (a broken file fails here, not in front of a patient)
    for offering in Offering.objects.select_related("page").order_by("id"):
        if not offering.is_demo or not any(k in (offering.page.import_key or offering.page.slug) for k in KEYWORDS):
            continue
        for kind, language, price, unit, pay_at, note in EXTRAS:
            _extra, made = OfferingExtra.objects.get_or_create(
                offering=offering, kind=kind, language=language,
                defaults={"price": price, "unit": unit, "pay_at": pay_at,
                          **{f"note_{lang}": text for lang, text in note.items()}})
            if made:
                created.append(f"extra {kind} on offering {offering.pk}")
    pet = (Offering.objects.filter(page__import_key="pet_ct_fdg", review_required=False, resource_links__isnull=False)
           .order_by("-id").first())
    if pet is None:
        return
    user = _patient(password, created)
    PatientProfile.objects.get_or_create(user=user, defaults={"citizenship": "TJ", "preferred_language": "tg",
                                                              "home_timezone": "Asia/Dushanbe"})
    if not WaitlistEntry.objects.filter(user=user).exists():
        # a day the scanner is closed (cyclotron maintenance): the patient waits for it. Removing the closure in
        # the desk frees the day, and the waitlist offers it to them (make run shows the whole flow).
        tz = pet.clinic.tz
        day = timezone.now().astimezone(tz).date() + timedelta(days=150)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = datetime.combine(day, time(0), tz)
        for link in pet.resource_links.select_related("resource"):
            AvailabilityException.objects.get_or_create(
                resource=link.resource, kind=AvailabilityException.CLOSED, start=start,
                defaults={"end": start + timedelta(days=1), "reason": "Cyclotron maintenance (demo)"})
        WaitlistEntry.objects.create(user=user, offering=pet, window_start=day, window_end=day, language="tg")
        created.append(f"waitlist entry on offering {pet.pk}")


def _patient(password, created):
    User = get_user_model()
    user = User.objects.filter(email=WAITLIST_PATIENT).first()
    if user is None:
        user = User.objects.create_user(username="waitlist.patient", email=WAITLIST_PATIENT, password=password,
                                        first_name="Demo", last_name="Patient")
        EmailAddress.objects.create(user=user, email=WAITLIST_PATIENT, verified=True, primary=True)
        created.append(f"user {WAITLIST_PATIENT}")
    return user

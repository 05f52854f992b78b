"""Demo online consultations and second opinions (idempotent; called from bookings.demo.data.load_demo).

For each clinic offering one of the services below: a clinician resource with weekday hours, a clinician account,
and on the service page an online consultation (30 min, paid by card like any slot) and a free second opinion.
"""

from __future__ import annotations

from datetime import time

from bookings.demo.users import demo_user
from bookings.models import ClinicMembership, OfferingResource, Resource, WeeklyHours
from catalog.models import Offering

SERVICES = ("gamma_knife", "tomotherapy", "pet_", "ivf", "dental", "phaco", "cardiac", "kidney", "liver")
CLINICIAN = "Consulting specialist — online (demo)"
NAMES = {"name_en": CLINICIAN, "name_ru": "Врач-консультант — онлайн (демо)",
         "name_kk": "Кеңесші дәрігер — онлайн (демо)", "name_ky": "Кеңешчи дарыгер — онлайн (демо)",
         "name_uz": "Maslahatchi shifokor — onlayn (demo)", "name_tg": "Табиби машваратчӣ — онлайн (демо)",
         "name_zh_hans": "会诊专家——在线（演示）"}
HOURS = (time(10), time(16))
PRICE = 1_500_000  # 15 000 ₸ in tiyn
SORT_BASE = 10_000  # after the clinics' treatments wherever offerings are listed in order


def clinician_email(clinic) -> str:
    return f"clinician.{clinic.slug.replace('_', '-')}@emhana.example"


def _clinician_resource(clinic, created):
    resource = Resource.objects.filter(clinic=clinic, name_en=CLINICIAN).first()
    if resource is None:
        resource = Resource.objects.create(clinic=clinic, kind=Resource.PRACTITIONER, **NAMES)
        WeeklyHours.objects.bulk_create([WeeklyHours(resource=resource, weekday=d, start=HOURS[0], end=HOURS[1])
                                         for d in range(5)])
        created.append(f"{clinic.slug}: {CLINICIAN}")
    return resource


def _offerings(treatment, resource, created):
    """The consultation and the second opinion beside ``treatment``, added through a published revision of the
    service page (as the catalogue loader does), so an editor's next publish keeps them."""
    page = treatment.page.specific
    kinds = [k for k in (Offering.CONSULTATION, Offering.SECOND_OPINION)
             if not Offering.objects.filter(page=page, clinic=treatment.clinic, kind=k).exists()]
    if kinds:
        if page.has_unpublished_changes:
            created.append(f"{page.slug}: has an unpublished draft, no demo consultation added")
            return
        rows = list(page.offerings.all())
        for kind in kinds:
            consultation = kind == Offering.CONSULTATION
            rows.append(Offering(
                clinic=treatment.clinic, kind=kind, currency=treatment.currency,
                price=PRICE if consultation else 0, deposit=PRICE if consultation else 0, sessions=1,
                session_minutes=30, stay_days=1, review_required=not consultation, hold_minutes=15,
                notice_hours=24, horizon_days=60, slot_step_minutes=30, is_demo=True,
                sort_order=SORT_BASE + treatment.pk * 2 + (0 if consultation else 1)))
            created.append(f"{treatment.clinic.slug}: {kind} for {page.slug}")
        page.offerings = rows
        page.save_revision(log_action=False).publish(log_action=False)
    for offering in Offering.objects.filter(page=page, clinic=treatment.clinic).exclude(kind=Offering.TREATMENT):
        OfferingResource.objects.get_or_create(offering=offering, resource=resource)


def load_consultations(created: list[str]) -> None:
    treatments = list(Offering.objects.filter(kind=Offering.TREATMENT, is_active=True)
                      .select_related("page", "clinic").order_by("id"))
    for treatment in treatments:
        key = f"{treatment.page.import_key or treatment.page.slug}".lower()
        if not any(needle in key for needle in SERVICES):
            continue
        resource = _clinician_resource(treatment.clinic, created)
        _offerings(treatment, resource, created)
        user = demo_user(clinician_email(treatment.clinic), created, first_name="Demo", last_name="Clinician")
        ClinicMembership.objects.get_or_create(user=user, clinic=treatment.clinic,
                                               defaults={"role": ClinicMembership.CLINICIAN})

"""Demo resources, hours, exceptions and staff for the demo clinics (idempotent; never in production)."""

from __future__ import annotations

from datetime import time, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from wagtail.models import Site

from bookings.consult.demo import load_consultations
from bookings.demo.users import DEMO_PASSWORD, demo_user
from bookings.models import AvailabilityException, ClinicMembership, OfferingResource, Resource, WeeklyHours
from bookings.patients.demo import load as load_patients
from bookings.trip.demo import load as load_trip_demo
from catalog.models import ClinicPage, Offering
from cms.models import ContactChannels

WEEKDAYS = range(0, 5)

# keyword in the service's slug/equipment -> (resource name, kind, weekly hours, buffer after, extra resource)
RULES = [
    ("gamma_knife", ("Gamma Knife unit (demo)", Resource.EQUIPMENT, (time(9), time(17)), 30),
     ("Medical physicist — radiosurgery (demo)", Resource.PRACTITIONER)),
    ("tomotherapy", ("TomoTherapy HD unit (demo)", Resource.EQUIPMENT, (time(8), time(20)), 0),
     ("Medical physicist — tomotherapy (demo)", Resource.PRACTITIONER)),
    ("pet_", ("PET-CT scanner (demo)", Resource.EQUIPMENT, (time(8), time(18)), 15), None),
    ("spect", ("SPECT-CT camera (demo)", Resource.EQUIPMENT, (time(8), time(17)), 15), None),
    ("scintigraphy", ("SPECT-CT camera (demo)", Resource.EQUIPMENT, (time(8), time(17)), 15), None),
    ("radiotherapy", ("Linear accelerator (demo)", Resource.EQUIPMENT, (time(8), time(19)), 0), None),
    ("sbrt", ("Linear accelerator (demo)", Resource.EQUIPMENT, (time(8), time(19)), 0), None),
    ("imrt", ("Linear accelerator (demo)", Resource.EQUIPMENT, (time(8), time(19)), 0), None),
    ("ivf", ("IVF and embryology lab (demo)", Resource.ROOM, (time(8), time(16)), 0), None),
    ("embryo", ("IVF and embryology lab (demo)", Resource.ROOM, (time(8), time(16)), 0), None),
    ("oocyte", ("IVF and embryology lab (demo)", Resource.ROOM, (time(8), time(16)), 0), None),
    ("dental", ("Dental implant suite (demo)", Resource.ROOM, (time(9), time(18)), 15), None),
    ("sinus_lift", ("Dental implant suite (demo)", Resource.ROOM, (time(9), time(18)), 15), None),
    ("full_arch", ("Dental implant suite (demo)", Resource.ROOM, (time(9), time(18)), 15), None),
    ("phaco", ("Ophthalmic microsurgery room (demo)", Resource.ROOM, (time(9), time(17)), 10), None),
    ("refractive", ("Ophthalmic microsurgery room (demo)", Resource.ROOM, (time(9), time(17)), 10), None),
    ("corneal", ("Ophthalmic microsurgery room (demo)", Resource.ROOM, (time(9), time(17)), 10), None),
]
DEFAULT = ("Operating room 1 (demo)", Resource.ROOM, (time(8), time(18)), 30)

# The demo resources' names in the staff's languages: (ru, kk, ky, uz, tg, zh_hans)
NAMES = {
    "Gamma Knife unit (demo)": ("Гамма-нож (демо)", "«Гамма-пышақ» қондырғысы (демо)", "«Гамма-нож» түзүлүшү (демо)",
                                "«Gamma-pichoq» qurilmasi (demo)", "Дастгоҳи «Гамма-нож» (демо)", "伽玛刀设备（演示）"),
    "Medical physicist — radiosurgery (demo)": (
        "Медицинский физик — радиохирургия (демо)", "Медициналық физик — радиохирургия (демо)",
        "Медициналык физик — радиохирургия (демо)", "Tibbiy fizik — radiojarrohlik (demo)",
        "Физики тиббӣ — радиоҷарроҳӣ (демо)", "医学物理师——放射外科（演示）"),
    "TomoTherapy HD unit (demo)": ("Аппарат TomoTherapy HD (демо)", "TomoTherapy HD аппараты (демо)",
                                   "TomoTherapy HD аппараты (демо)", "TomoTherapy HD apparati (demo)",
                                   "Дастгоҳи TomoTherapy HD (демо)", "TomoTherapy HD螺旋断层放疗设备（演示）"),
    "Medical physicist — tomotherapy (demo)": (
        "Медицинский физик — томотерапия (демо)", "Медициналық физик — томотерапия (демо)",
        "Медициналык физик — томотерапия (демо)", "Tibbiy fizik — tomoterapiya (demo)",
        "Физики тиббӣ — томотерапия (демо)", "医学物理师——螺旋断层放疗（演示）"),
    "PET-CT scanner (demo)": ("ПЭТ-КТ сканер (демо)", "ПЭТ-КТ сканері (демо)", "ПЭТ-КТ сканери (демо)",
                              "PET-KT skaneri (demo)", "Сканери ПЭТ-КТ (демо)", "PET-CT扫描仪（演示）"),
    "SPECT-CT camera (demo)": ("ОФЭКТ-КТ камера (демо)", "ОФЭКТ-КТ камерасы (демо)", "ОФЭКТ-КТ камерасы (демо)",
                               "OFEKT-KT kamerasi (demo)", "Камераи ОФЭКТ-КТ (демо)", "SPECT-CT扫描仪（演示）"),
    "Linear accelerator (demo)": ("Линейный ускоритель (демо)", "Сызықтық үдеткіш (демо)",
                                  "Сызыктуу ылдамдаткыч (демо)", "Chiziqli tezlatgich (demo)",
                                  "Суръатбахшаки хаттӣ (демо)", "直线加速器（演示）"),
    "IVF and embryology lab (demo)": ("Лаборатория ЭКО и эмбриологии (демо)", "ЭКҰ және эмбриология зертханасы (демо)",
                                      "ЭКО жана эмбриология лабораториясы (демо)",
                                      "EKU va embriologiya laboratoriyasi (demo)",
                                      "Лабораторияи ЭКО ва эмбриология (демо)", "试管婴儿与胚胎实验室（演示）"),
    "Dental implant suite (demo)": ("Кабинет дентальной имплантации (демо)", "Тіс имплантациясы кабинеті (демо)",
                                    "Тиш имплантациясы бөлмөсү (демо)", "Tish implantatsiyasi xonasi (demo)",
                                    "Утоқи имплантатсияи дандон (демо)", "牙种植诊室（演示）"),
    "Ophthalmic microsurgery room (demo)": (
        "Офтальмологическая микрохирургическая операционная (демо)",
        "Офтальмологиялық микрохирургия операциялық бөлмесі (демо)",
        "Офтальмологиялык микрохирургия операциялык бөлмөсү (демо)",
        "Oftalmologik mikrojarrohlik operatsiya xonasi (demo)", "Утоқи ҷарроҳии микроофталмологӣ (демо)",
        "眼科显微手术室（演示）"),
    "Operating room 1 (demo)": ("Операционная № 1 (демо)", "№ 1 операциялық бөлме (демо)",
                                "№ 1 операциялык бөлмө (демо)", "1-operatsiya xonasi (demo)",
                                "Утоқи ҷарроҳии № 1 (демо)", "1号手术室（演示）"),
}


def translated_names(name: str) -> dict:
    """{'name_en': ..., 'name_ru': ..., ...} for a demo resource."""
    others = dict(zip(("ru", "kk", "ky", "uz", "tg", "zh_hans"), NAMES.get(name, ()), strict=False))
    return {"name_en": name} | {f"name_{lang}": value for lang, value in others.items()}


def _resource(clinic, name, kind, hours, buffer_after, created):
    resource = Resource.objects.filter(clinic=clinic, name_en=name).first()
    made = resource is None
    if made:
        resource = Resource.objects.create(clinic=clinic, kind=kind, buffer_after_minutes=buffer_after,
                                           **translated_names(name))
    elif not resource.name_ru and name in NAMES:  # made before the names were translated
        Resource.objects.filter(pk=resource.pk).update(**translated_names(name))
    if made:
        created.append(f"{clinic.slug}: {name}")
        WeeklyHours.objects.bulk_create([WeeklyHours(resource=resource, weekday=d, start=hours[0], end=hours[1])
                                         for d in WEEKDAYS])
    return resource


def rule_for(offering: Offering):
    key = f"{offering.page.import_key or offering.page.slug} {offering.page.equipment_en}".lower()
    for needle, main, extra in RULES:
        if needle in key:
            return main, extra
    return DEFAULT, None


@transaction.atomic
def load_demo() -> list[str]:
    if settings.PRODUCTION:
        raise RuntimeError("Demo data is never loaded in production.")
    created: list[str] = []
    for offering in Offering.objects.select_related("clinic", "page").order_by("id"):
        if offering.resource_links.exists():
            continue
        (name, kind, hours, buffer_after), extra = rule_for(offering)
        resources = [_resource(offering.clinic, name, kind, hours, buffer_after, created)]
        if extra:
            resources.append(_resource(offering.clinic, extra[0], extra[1], hours, 0, created))
        OfferingResource.objects.bulk_create([OfferingResource(offering=offering, resource=r) for r in resources])
    _maintenance_day(created)
    _staff(created)
    _contact_channels(created)
    load_consultations(created)  # online consultations and second opinions (issue 11)
    load_trip_demo(created, DEMO_PASSWORD)  # extras, entry rules, a waitlist entry (issue 11)
    load_patients(created, DEMO_PASSWORD)  # patients with complete profiles, records, consents (issue 10)
    return created


def _contact_channels(created):
    """Example contact channels (marked as demo on the contact page) until editors set real ones."""
    site = Site.objects.filter(is_default_site=True).first()
    if site is None or ContactChannels.objects.filter(site=site).exclude(phone="", whatsapp="").exists():
        return
    ContactChannels.objects.update_or_create(site=site, defaults={
        "phone": "+7 717 200 00 00", "email": "care@emhana.example", "whatsapp": "https://wa.me/77172000000",
        "telegram": "https://t.me/emhana_demo", "wechat_id": "emhana-demo",
        "is_demo": True})
    created.append("contact channels (demo)")


def _maintenance_day(created):
    """A maintenance day on the Gamma Knife three weeks ahead, so the desk shows an exception."""
    gk = Resource.objects.filter(name__startswith="Gamma Knife").first()
    if gk and not gk.exceptions.exists():
        tz = gk.clinic.tz
        day = (timezone.now().astimezone(tz) + timedelta(days=21)).date()
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = timezone.datetime.combine(day, time(0), tzinfo=tz)
        AvailabilityException.objects.create(resource=gk, kind=AvailabilityException.CLOSED, start=start,
                                             end=start + timedelta(days=1), reason="Scheduled maintenance (demo)")
        created.append("Gamma Knife maintenance day")


def demo_email(clinic: ClinicPage) -> str:
    return f"coordinator.{clinic.slug.replace('_', '-')}@emhana.example"


def _staff(created):
    for clinic in ClinicPage.objects.filter(resources__isnull=False).distinct():
        user = demo_user(demo_email(clinic), created, first_name="Demo", last_name="Coordinator")
        ClinicMembership.objects.get_or_create(user=user, clinic=clinic,
                                               defaults={"role": ClinicMembership.COORDINATOR})
    editor = demo_user("editor@emhana.example", created, is_staff=False)
    for name in ("Editors", "Moderators"):
        group = Group.objects.filter(name=name).first()
        if group:
            editor.groups.add(group)
    demo_user("admin@emhana.example", created, is_staff=True, is_superuser=True)

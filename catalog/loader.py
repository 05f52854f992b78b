"""Builds the catalogue page tree from catalog/data/*.json — idempotently, and never over an editor's work.

A page the loader has not made yet is created and published. A page that exists (found by its
import key, whatever an editor renamed it to) only gets what it lacks: a translation whose field is
still empty, an offering for a clinic that is not listed yet. Pages with unpublished drafts are left
alone and reported. Running it twice changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.utils.text import slugify
from wagtail.models import Page, Site
from wagtail.signal_handlers import disable_reference_index_auto_update

from cms.models import HomePage, InformationPage
from cms.site_text import HOME_TEXT

from .models import (
    City,
    ClinicIndexPage,
    ClinicPage,
    ExchangeRate,
    Offering,
    ServiceFAQ,
    ServicePage,
    SpecialtyIndexPage,
    SpecialtyPage,
    default_timezone,
)

# the titles and slugs of the two index pages the catalogue hangs under the home page
INDEX_TEXT = {
    "treatments": {
        "title": {
            "en": "Treatments",
            "ru": "Лечение",
            "kk": "Емдеу",
            "ky": "Дарылоо",
            "uz": "Davolash",
            "tg": "Табобат",
            "zh_hans": "治疗项目"
        },
        "slug": {
            "en": "treatments",
            "ru": "lechenie",
            "kk": "emdeu",
            "ky": "dariloo",
            "uz": "davolash",
            "tg": "tabobat",
            "zh_hans": "zhiliao"
        }
    },
    "clinics": {
        "title": {
            "en": "Clinics",
            "ru": "Клиники",
            "kk": "Клиникалар",
            "ky": "Клиникалар",
            "uz": "Klinikalar",
            "tg": "Клиникаҳо",
            "zh_hans": "医疗机构"
        },
        "slug": {
            "en": "clinics",
            "ru": "kliniki",
            "kk": "klinikalar",
            "ky": "klinikalar",
            "uz": "klinikalar",
            "tg": "klinikaho",
            "zh_hans": "yiliao-jigou"
        }
    }
}

DATA_DIR = Path(__file__).resolve().parent / "data"
I18N_DIR = DATA_DIR / "i18n"
LANGS = [code.replace("-", "_") for code, _name in settings.LANGUAGES]

# Until a clinic says which languages its coordinators speak (demo: shown on demo clinic pages only).
DEMO_LANGUAGES = ["kk", "ru", "en"]
# Demo rates (tenge per unit) until staff set real ones in the admin.
DEMO_RATES = {"USD": "510", "EUR": "590", "RUB": "6.3", "CNY": "71", "UZS": "0.040", "KGS": "5.85", "TJS": "54"}


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def read(name: str):
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        return with_translations(json.load(fh), name)


def with_translations(rows, name: str):
    """Overlay catalog/data/i18n/<lang>/<name> (slug -> translated fields) on the source rows.

    A translated field joins the row's per-language dict; a plain value (an English-only list) becomes
    {"en": value, lang: translation}; FAQs are matched by position.
    """
    if not isinstance(rows, list):
        return rows
    by_slug = {row["slug"]: row for row in rows if isinstance(row, dict) and "slug" in row}
    stem = name.removesuffix(".json")
    for path in sorted(I18N_DIR.glob(f"*/{stem}.json")) + sorted(I18N_DIR.glob(f"*/{stem}.*.json")):
        lang = path.parent.name  # a file may come in parts: services_2.json, services_2.b.json, ...
        for slug, fields in json.loads(path.read_text(encoding="utf-8")).items():
            row = by_slug.get(slug)
            if row is None:
                continue
            for field_name, value in fields.items():
                if field_name == "faqs":
                    for faq, tr in zip(row.get("faqs") or [], value, strict=False):
                        faq["q"][lang], faq["a"][lang] = tr["q"], tr["a"]
                    continue
                current = row.get(field_name)
                if not isinstance(current, dict):
                    current = row[field_name] = {"en": current} if current else {}
                current[lang] = value
    return rows


def read_services() -> list[dict]:
    rows = []
    for path in sorted(DATA_DIR.glob("services_*.json")):
        rows.extend(read(path.name))
    return rows


def paragraphs(text: str | None) -> str:
    if not text:
        return ""
    parts = [p.strip() for p in text.replace("\r", "").split("\n\n") if p.strip()]
    return "".join(f"<p>{escape(p)}</p>" for p in parts)


def lines(value) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return value or ""


def translated(values: dict | None, convert=lambda v: v) -> dict:
    """{'en': ..., 'zh_hans': ...} -> {'en': converted, ...}, only languages with a value.

    A plain value (not yet translated) counts as English."""
    if values is not None and not isinstance(values, dict):
        values = {"en": values}
    out = {}
    for lang in LANGS:
        value = (values or {}).get(lang)
        if value:
            out[lang] = convert(value)
    return out


def unique_slug(base: str, parent: Page, lang: str, exclude_pk=None) -> str:
    base = (base or "page")[:70].strip("-") or "page"
    slug, n = base, 2
    siblings = parent.get_children()
    if exclude_pk:
        siblings = siblings.exclude(pk=exclude_pk)
    while siblings.filter(**{f"slug_{lang}": slug}).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


class Loader:
    def __init__(self, stdout=None):
        self.report = Report()
        self.stdout = stdout

    # -- generic page helpers -------------------------------------------------------------------
    def set_fields(self, page, fields: dict[str, dict], only_blank: bool) -> bool:
        """fields: {'summary': {'en': ..., 'ru': ...}}; returns whether anything changed."""
        changed = False
        for name, per_lang in fields.items():
            for lang, value in per_lang.items():
                attr = f"{name}_{lang}"
                current = getattr(page, attr, None)
                if only_blank and current not in (None, ""):
                    continue
                if current != value:
                    setattr(page, attr, value)
                    changed = True
        return changed

    def slugs_for(self, titles: dict, explicit: dict | None, key: str) -> dict:
        slugs = {}
        for lang in LANGS:
            if explicit and explicit.get(lang):
                slugs[lang] = explicit[lang]
            elif titles.get(lang):
                slugs[lang] = slugify(titles[lang], allow_unicode=True)[:70] or key.split(":")[-1]
        slugs["en"] = (explicit or {}).get("en") or key.split(":")[-1].replace("_", "-")
        return slugs

    def ensure_page(self, model, parent, key: str, titles: dict, fields: dict, extra: dict | None = None,
                    slugs: dict | None = None, children=None):
        """Create and publish a page, or fill what it lacks. `children(page, existing)` adds cluster rows."""
        page = model.objects.filter(import_key=key).first()
        if page is None:
            page = model(import_key=key, **(extra or {}))
            self.set_fields(page, {"title": titles}, only_blank=False)
            self.set_fields(page, fields, only_blank=False)
            slugs = slugs or self.slugs_for(titles, None, key)
            for lang, slug in slugs.items():
                setattr(page, f"slug_{lang}", unique_slug(slug, parent, lang))
            page.slug = page.slug_en
            if children:
                children(page, existing=False)
            parent.add_child(instance=page)
            page.save_revision(log_action=False).publish(log_action=False)
            self.report.created.append(f"{model.__name__} {key}")
            return page
        if page.has_unpublished_changes:
            self.report.skipped.append(f"{model.__name__} {key}: has an unpublished draft, left as it is")
            return page
        draft = page.get_latest_revision_as_object() if page.latest_revision_id else page
        changed = self.set_fields(draft, {"title": titles}, only_blank=True)
        changed |= self.set_fields(draft, fields, only_blank=True)
        if children:
            changed |= bool(children(draft, existing=True))
        if changed:
            draft.save_revision(log_action=False).publish(log_action=False)
            self.report.updated.append(f"{model.__name__} {key}")
        return page

    # -- the tree ---------------------------------------------------------------------------------
    def home(self) -> HomePage:
        home = HomePage.objects.first()
        if home is None:
            root = Page.get_first_root_node()
            home = HomePage(slug="home")
            self.set_fields(home, {k: v for k, v in HOME_TEXT.items()}, only_blank=False)
            for lang in LANGS:
                setattr(home, f"slug_{lang}", "home")
            root.add_child(instance=home)
            home.save_revision(log_action=False).publish(log_action=False)
            site = Site.objects.filter(is_default_site=True).first()
            old_root = site.root_page if site else None
            if site:
                site.root_page = home
                site.site_name = "Emhana"
                site.save()
            else:
                Site.objects.create(hostname="localhost", port=80, root_page=home, is_default_site=True,
                                    site_name="Emhana")
            if old_root and old_root.pk != home.pk and not old_root.get_children().exists():
                old_root.delete()
            self.report.created.append("HomePage")
        elif not home.has_unpublished_changes:
            draft = home.get_latest_revision_as_object()
            if self.set_fields(draft, {k: v for k, v in HOME_TEXT.items()}, only_blank=True):
                draft.save_revision(log_action=False).publish(log_action=False)
                self.report.updated.append("HomePage")
        return home

    def cities(self) -> dict[str, City]:
        out = {}
        for row in read("cities.json"):
            city = City.objects.filter(slug=row["slug"]).first()
            if city is None:
                city = City(slug=row["slug"], timezone=row.get("timezone") or default_timezone())
                self.set_fields(city, {"name": translated(row["name"])}, only_blank=False)
                city.save()
                self.report.created.append(f"City {row['slug']}")
            elif self.set_fields(city, {"name": translated(row["name"])}, only_blank=True):
                city.save()
                self.report.updated.append(f"City {row['slug']}")
            out[city.slug] = city
        return out

    def rates(self):
        for code, rate in DEMO_RATES.items():
            _obj, created = ExchangeRate.objects.get_or_create(currency=code, defaults={"kzt_per_unit": Decimal(rate)})
            if created:
                self.report.created.append(f"ExchangeRate {code}")

    def run(self) -> Report:
        # Wagtail re-indexes references on every save; for a bulk load, index once at the end.
        with transaction.atomic(), disable_reference_index_auto_update():
            self._run()
        if self.report.changed:
            call_command("rebuild_references_index", verbosity=0)
        return self.report

    def _run(self):
        home = self.home()
        self.rates()
        cities = self.cities()
        treatments = self.ensure_page(
            SpecialtyIndexPage, home, "treatments", INDEX_TEXT["treatments"]["title"], {},
            slugs=INDEX_TEXT["treatments"]["slug"], extra={"show_in_menus": True})
        clinic_index = self.ensure_page(
            ClinicIndexPage, home, "clinics", INDEX_TEXT["clinics"]["title"], {},
            slugs=INDEX_TEXT["clinics"]["slug"], extra={"show_in_menus": True})

        clinics = {}
        for row in read("clinics.json"):
            fields = {
                "short_name": translated(row.get("short_name")),
                "address": translated(row.get("address")),
                "summary": translated(row.get("summary")),
                "description": translated(row.get("description"), paragraphs),
                "equipment": translated(row.get("equipment"), lines),
            }
            clinics[row["slug"]] = self.ensure_page(
                ClinicPage, clinic_index, row["slug"], translated(row["name"]), fields,
                extra={"city": cities[row["city"]], "coordinator_languages": ",".join(row.get("languages") or DEMO_LANGUAGES),
                       "verified": bool(row.get("verified")), "is_demo": True,
                       "source_note": row.get("source", "")},
                slugs={"en": row["slug"].replace("_", "-")} | {
                    lang: row["slug"].replace("_", "-") for lang in LANGS})

        specialties = {}
        for row in read("specialties.json"):
            specialties[row["slug"]] = self.ensure_page(
                SpecialtyPage, treatments, row["slug"], translated(row["name"]),
                {"summary": translated(row.get("summary"))}, extra={"order": row.get("order", 100)})

        offerings_by_service: dict[str, list[dict]] = {}
        for row in read("offerings.json"):
            offerings_by_service.setdefault(row["service"], []).append(row)

        for row in read_services():
            self.service(row, specialties[row["specialty"]], clinics, offerings_by_service.get(row["slug"], []))

        for row in read("information.json"):
            self.ensure_page(
                InformationPage, home, f"info:{row['slug']}", translated(row["title"]),
                {"summary": translated(row.get("summary")), "body": translated(row.get("body"), paragraphs)},
                extra={"show_in_menus": True})

    def service(self, row, specialty, clinics, offering_rows):
        def children(page, existing):
            added = 0
            have = {o.clinic_id for o in page.offerings.all()} if existing else set()
            new = list(page.offerings.all()) if existing else []
            for o in offering_rows:
                clinic = clinics[o["clinic"]]
                if clinic.pk in have:
                    continue
                spacing = o.get("spacing") or {"kind": "single"}
                new.append(Offering(
                    clinic=clinic, currency="KZT", price=int(o["price_kzt"]) * 100,
                    deposit=int(o["deposit_kzt"]) * 100, sessions=int(o["sessions"]),
                    session_minutes=int(o["session_minutes"]), spacing=spacing["kind"],
                    spacing_offsets=list(spacing.get("offsets") or []),
                    stay_days=int(o.get("stay_days") or row.get("typical_stay_days") or 1),
                    review_required=bool(o["review_required"]), hold_minutes=int(o.get("hold_minutes") or 15),
                    is_demo=bool(o.get("demo", True)),
                ))
                have.add(clinic.pk)
                added += 1
            if added:
                page.offerings = new
            if not existing:
                faqs = []
                for item in row.get("faqs") or []:
                    faq = ServiceFAQ()
                    self.set_fields(faq, {"question": translated(item["q"]), "answer": translated(item["a"])},
                                    only_blank=False)
                    faqs.append(faq)
                page.faqs = faqs
            else:  # fill the languages an existing FAQ still lacks (matched by position)
                faqs = list(page.faqs.all())
                filled = False
                for faq, item in zip(faqs, row.get("faqs") or [], strict=False):
                    filled |= self.set_fields(
                        faq, {"question": translated(item["q"]), "answer": translated(item["a"])}, only_blank=True)
                if filled:
                    page.faqs = faqs
                    added += 1
            return added

        fields = {
            "summary": translated(row.get("summary")),
            "synonyms": translated(row.get("synonyms"), lines),
            "description": translated(row.get("description"), paragraphs),
            "who_for": translated(row.get("who_for"), paragraphs),
            "course": translated(row.get("course"), paragraphs),
            "documents": translated(row.get("documents"), lines),
            "included": translated(row.get("included"), lines),
            "equipment": translated(row.get("equipment"), lines),
        }
        extra = {
            "typical_sessions": int(row.get("typical_sessions") or 1),
            "session_minutes": int(row.get("session_minutes") or 60),
            "typical_stay_days": int(row.get("typical_stay_days") or 1),
            "figures_are_estimates": bool(row.get("estimate", True)),
            "source_note": row.get("source_note", ""),
        }
        return self.ensure_page(ServicePage, specialty, row["slug"], translated(row["name"]), fields,
                                extra=extra, children=children)

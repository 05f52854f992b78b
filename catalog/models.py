"""The catalogue: specialties, services, clinics and the offerings that link them.

Pages (not snippets) because editors write them, preview them, schedule and moderate
them, and patients reach each at its own translated URL.  An *offering* is the one
bookable thing: a clinic's price and course for a service.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.functional import cached_property
from django.utils.html import strip_tags
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from wagtail.admin.forms import WagtailAdminPageForm
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, MultiFieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Orderable, Page
from wagtail.search import index
from wagtail.snippets.models import register_snippet

from portal.l10n import language_name, place_time
from portal.preview import LanguagePreviewMixin

SEARCH_FOLD = str.maketrans({"ё": "е", "Ё": "е", "-": " ", "‐": " ", "–": " ", "/": " ", "(": " ", ")": " ", ",": " "})


class ImportKeyMixin(models.Model):
    """The catalogue loader's stable key for a page, so re-running it finds the page an editor renamed."""

    import_key = models.CharField(max_length=100, blank=True, default="", db_index=True, editable=False)

    class Meta:
        abstract = True


class MoneyFormField(forms.DecimalField):
    """Typed and shown in tenge (major units), handed to the model in tiyn (minor units)."""

    def __init__(self, **kwargs):
        kwargs.pop("max_value", None)
        kwargs.pop("min_value", None)
        super().__init__(max_digits=14, decimal_places=2, min_value=0, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            major = Decimal(value) / 100
            return major.quantize(Decimal("1")) if major == major.to_integral_value() else major
        return value

    def clean(self, value):
        major = super().clean(value)
        return None if major is None else int((major * 100).to_integral_value())

    def has_changed(self, initial, data):
        try:
            return self.clean(data) != initial
        except forms.ValidationError:
            return True


class MinorUnitsField(models.BigIntegerField):
    """Money as an integer in the smallest unit, edited in tenge in every form (Wagtail included)."""

    def formfield(self, **kwargs):
        return super().formfield(**{**kwargs, "form_class": MoneyFormField})


def json_ld(data: dict) -> str:
    """schema.org JSON-LD, safe inside a <script> element."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v not in (None, "", [])}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    text = json.dumps(clean(data), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def missing_translation(obj, fields) -> bool:
    """Whether any of these fields has no text in the active language (so the page shows a fallback)."""
    suffix = (get_language() or "en").replace("-", "_")
    return any(not getattr(obj, f"{name}_{suffix}", None) for name in fields)


def fold(text: str) -> str:
    """Normalise text for the catalogue's multilingual search: case, ё/е, punctuation between words."""
    return re.sub(r"[\W_]+", " ", (text or "").translate(SEARCH_FOLD).casefold()).strip()


def every_language(obj, fields) -> list[str]:
    """The values of translated ``fields`` of ``obj`` in all the site's languages."""
    return [getattr(obj, f"{field}_{code.replace('-', '_')}", "") or ""
            for code, _name in settings.LANGUAGES for field in fields]


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def search_filter(field: str, term: str) -> models.Q:
    """A folded query term matches the start of a word ("pet" finds "PET-CT", not "appetite"); Chinese and
    Japanese, written without spaces, match anywhere."""
    if CJK.search(term):
        return models.Q(**{f"{field}__contains": term})
    return models.Q(**{f"{field}__contains": f" {term}"})


def title_filter(term: str, lang: str, first: bool = False) -> models.Q:
    """The term starts a word of the service's title in ``lang`` (its segment of ``search_names``), or, with
    ``first``, starts the title."""
    space = "" if CJK.search(term) else " "
    anywhere = "" if first else "[^|]*"
    return models.Q(search_names__regex=rf"\|{lang.replace('-', '_')}:{anywhere}{space}{re.escape(term)}")


def default_timezone() -> str:
    """The zone of a city or clinic that names none: one setting, ``CLINIC_DEFAULT_TIMEZONE``."""
    return settings.CLINIC_DEFAULT_TIMEZONE


@register_snippet
class City(models.Model):
    """A city with clinics. A snippet: editors rename it, patients filter by it."""

    slug = models.SlugField(unique=True)
    name = models.CharField(_("name"), max_length=100)
    timezone = models.CharField(
        _("time zone"), max_length=64, default=default_timezone,
        help_text=_("IANA zone (Kazakhstan: UTC+5 everywhere since 1 March 2024)."),
    )

    panels = [FieldPanel("slug"), FieldPanel("name"), FieldPanel("timezone")]

    class Meta:
        ordering = ["slug"]
        verbose_name = _("city")
        verbose_name_plural = _("cities")

    def __str__(self):
        return self.name


@register_snippet
class ExchangeRate(models.Model):
    """How many tenge one unit of a display currency costs. Staff set it; no network at request time."""

    CURRENCIES = [("USD", "USD"), ("EUR", "EUR"), ("RUB", "RUB"), ("CNY", "CNY"),
                  ("UZS", "UZS"), ("KGS", "KGS"), ("TJS", "TJS")]
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, unique=True)
    kzt_per_unit = models.DecimalField(_("tenge per unit"), max_digits=14, decimal_places=6,
                                       validators=[MinValueValidator(Decimal("0.000001"))])
    updated_at = models.DateTimeField(auto_now=True)

    panels = [FieldPanel("currency"), FieldPanel("kzt_per_unit")]

    class Meta:
        ordering = ["currency"]
        verbose_name = _("exchange rate")

    def __str__(self):
        return f"1 {self.currency} = {self.kzt_per_unit} KZT"


class SpecialtyIndexPage(LanguagePreviewMixin, ImportKeyMixin, Page):
    """The catalogue: lists, searches and filters every live service."""

    intro = models.TextField(_("introduction"), blank=True)

    content_panels = Page.content_panels + [FieldPanel("intro")]
    subpage_types = ["catalog.SpecialtyPage"]
    parent_page_types = ["cms.HomePage"]
    max_count_per_parent = 1

    def get_context(self, request, *args, **kwargs):
        from .listing import catalogue_context  # lazy: a cycle, catalog.listing imports these models

        context = super().get_context(request, *args, **kwargs)
        context.update(catalogue_context(request, self))
        return context


class SpecialtyPage(LanguagePreviewMixin, ImportKeyMixin, Page):
    """A medical specialty (cardiac surgery, nuclear medicine, ...) grouping its services."""

    summary = models.TextField(_("summary"), blank=True)
    body = RichTextField(_("body"), blank=True)
    order = models.PositiveIntegerField(default=100)

    content_panels = Page.content_panels + [FieldPanel("summary"), FieldPanel("body")]
    promote_panels = Page.promote_panels + [FieldPanel("order")]
    search_fields = Page.search_fields + [index.SearchField("summary")]
    parent_page_types = ["catalog.SpecialtyIndexPage"]
    subpage_types = ["catalog.ServicePage"]

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["services"] = ServicePage.objects.child_of(self).live().specific().order_by("title")
        return context


class ServicePageForm(WagtailAdminPageForm):
    """Refuses to delete an offering that patients have booked: untick "bookable" instead."""

    def clean(self):
        cleaned = super().clean()
        formset = self.formsets.get("offerings")
        for form in getattr(formset, "deleted_forms", []):
            offering = form.instance
            if offering.pk and offering.bookings.exists():
                self.add_error(None, _("%(clinic)s's offering has bookings and cannot be deleted; untick "
                                       "\"bookable\" to stop new bookings.") % {"clinic": offering.clinic})
        return cleaned


class ServicePage(LanguagePreviewMixin, ImportKeyMixin, Page):
    """One kind of high-tech care. Its offerings say which clinics provide it, at what price."""

    base_form_class = ServicePageForm

    summary = models.TextField(_("summary"), blank=True)
    synonyms = models.TextField(_("synonyms"), blank=True,
                                help_text=_("Other names patients search for, one per line."))
    description = RichTextField(_("what it is"), blank=True)
    who_for = RichTextField(_("who it is for"), blank=True)
    course = RichTextField(_("how a course runs"), blank=True)
    documents = models.TextField(_("documents to send"), blank=True, help_text=_("One per line."))
    included = models.TextField(_("what is included"), blank=True, help_text=_("One per line."))
    typical_sessions = models.PositiveIntegerField(_("typical sessions"), default=1)
    session_minutes = models.PositiveIntegerField(_("minutes per session"), default=60)
    typical_stay_days = models.PositiveIntegerField(_("typical stay (days)"), default=1)
    equipment = models.TextField(_("equipment"), blank=True, help_text=_("One per line."))
    figures_are_estimates = models.BooleanField(_("figures are estimates"), default=True)
    source_note = models.TextField(_("sources and cautions"), blank=True)
    search_text = models.TextField(editable=False, blank=True, default="")
    search_names = models.TextField(editable=False, blank=True, default="")  # titles and synonyms: ranked first

    content_panels = Page.content_panels + [
        FieldPanel("summary"),
        FieldPanel("synonyms"),
        FieldPanel("description"),
        FieldPanel("who_for"),
        FieldPanel("course"),
        FieldPanel("documents"),
        FieldPanel("included"),
        MultiFieldPanel([
            FieldRowPanel([FieldPanel("typical_sessions"), FieldPanel("session_minutes"),
                           FieldPanel("typical_stay_days")]),
            FieldPanel("figures_are_estimates"),
            FieldPanel("equipment"),
            FieldPanel("source_note"),
        ], heading=_("Typical course")),
        InlinePanel("faqs", heading=_("Questions and answers"), label=_("question")),
        InlinePanel("offerings", heading=_("Offerings"), label=_("offering")),
    ]
    search_fields = Page.search_fields + [
        index.SearchField("summary"), index.SearchField("synonyms"), index.SearchField("description"),
    ]
    parent_page_types = ["catalog.SpecialtyPage"]
    subpage_types: list[str] = []

    @staticmethod
    def lines(text: str) -> list[str]:
        return [line.strip(" -•\t") for line in (text or "").splitlines() if line.strip(" -•\t")]

    def document_list(self):
        return self.lines(self.documents)

    def included_list(self):
        return self.lines(self.included)

    def build_search_names(self) -> str:
        """Synonyms of every language, then each language's title as its own segment (``|ru: ... |``), folded,
        each word after a space: search_filter finds a word in any name; title_filter in one language's title."""
        synonyms = " ".join(fold(p) for p in every_language(self, ("synonyms",)) if p)
        titles = "".join(f"|{code.replace('-', '_')}: {fold(getattr(self, 'title_' + code.replace('-', '_'), '') or '')} "
                         for code, _name in settings.LANGUAGES)
        return f" {synonyms} {titles}|"

    def build_search_text(self) -> str:
        """Every language's names, synonyms and summary, plus the specialty's names, folded."""
        parts = every_language(self, ("title", "synonyms", "summary"))
        parent = self.get_parent().specific if self.pk or self.path else None
        if parent is not None:
            parts += every_language(parent, ("title",))
        parts.append(self.slug.replace("_", " ").replace("-", " "))
        return " " + " ".join(fold(p) for p in parts if p) + " "

    def save(self, *args, **kwargs):
        if self.path:
            self.search_text = self.build_search_text()
            self.search_names = self.build_search_names()
        return super().save(*args, **kwargs)

    def get_context(self, request, *args, **kwargs):
        from .currency import display_currency  # lazy: a cycle, catalog.currency imports these models

        context = super().get_context(request, *args, **kwargs)
        offerings = self.offerings.select_related("clinic", "clinic__city").order_by("price")
        if isinstance(offerings, models.QuerySet):
            context["offerings"] = list(offerings.bookable())
        else:  # an editor's preview: the offerings in the form, not yet saved; the page itself need not be live
            context["offerings"] = [o for o in offerings if o.is_bookable(page_live=True)]
        context["currency"] = display_currency(request)
        context["missing_translation"] = missing_translation(self, ("summary", "description", "course"))
        context["json_ld"] = json_ld({
            "@context": "https://schema.org", "@type": "MedicalProcedure", "name": self.title,
            "description": self.summary, "url": self.full_url,
            "howPerformed": strip_tags(self.course or "")[:500] or None,
            "offers": [{"@type": "Offer", "price": str(o.price / 100), "priceCurrency": o.currency,
                        "seller": {"@type": "MedicalClinic", "name": o.clinic.title}}
                       for o in context["offerings"]],
        })
        return context


class ServiceFAQ(Orderable):
    page = ParentalKey(ServicePage, on_delete=models.CASCADE, related_name="faqs")
    question = models.CharField(_("question"), max_length=300)
    answer = models.TextField(_("answer"))

    panels = [FieldPanel("question"), FieldPanel("answer")]


class ClinicIndexPage(LanguagePreviewMixin, ImportKeyMixin, Page):
    """Lists the clinics."""

    intro = models.TextField(_("introduction"), blank=True)
    content_panels = Page.content_panels + [FieldPanel("intro")]
    parent_page_types = ["cms.HomePage"]
    subpage_types = ["catalog.ClinicPage"]
    max_count_per_parent = 1

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["clinics"] = ClinicPage.objects.child_of(self).live().select_related("city").order_by("title")
        return context


class ClinicPage(LanguagePreviewMixin, ImportKeyMixin, Page):
    """A national centre or clinic. Its staff use the clinic desk; editors write this page."""

    short_name = models.CharField(_("short name"), max_length=120, blank=True)
    city = models.ForeignKey(City, on_delete=models.PROTECT, related_name="clinics", verbose_name=_("city"))
    address = models.CharField(_("address"), max_length=300, blank=True)
    timezone = models.CharField(_("time zone"), max_length=64, blank=True,
                                help_text=_("Leave empty to use the city's zone."))
    summary = models.TextField(_("summary"), blank=True)
    description = RichTextField(_("description"), blank=True)
    equipment = models.TextField(_("equipment"), blank=True, help_text=_("One per line."))
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("email"), blank=True)
    coordinator_languages = models.CharField(
        _("languages the coordinators speak"), max_length=60, blank=True,
        help_text=_("Language codes separated by commas, e.g. kk,ru,en,zh."))
    map_url = models.URLField(_("map link"), blank=True,
                              help_text=_("Leave empty to link a map search for the address."))
    verified = models.BooleanField(_("details verified"), default=False)
    is_demo = models.BooleanField(_("demo data"), default=True)
    source_note = models.TextField(_("sources"), blank=True)

    content_panels = Page.content_panels + [
        FieldPanel("short_name"), FieldPanel("city"), FieldPanel("address"), FieldPanel("timezone"),
        FieldPanel("summary"), FieldPanel("description"), FieldPanel("equipment"),
        FieldRowPanel([FieldPanel("phone"), FieldPanel("email")]),
        FieldRowPanel([FieldPanel("coordinator_languages"), FieldPanel("map_url")]),
        FieldRowPanel([FieldPanel("verified"), FieldPanel("is_demo")]),
        FieldPanel("source_note"),
    ]
    search_fields = Page.search_fields + [index.SearchField("summary")]
    parent_page_types = ["catalog.ClinicIndexPage"]
    subpage_types: list[str] = []

    @property
    def zone_name(self) -> str:
        return self.timezone or (self.city.timezone if self.city_id else default_timezone())

    @cached_property
    def tz(self):
        return ZoneInfo(self.zone_name)

    @property
    def zone_label(self) -> str:
        """The clinic's time as patients know it: 'Astana, UTC+05:00' in the active language."""
        return place_time(self.city.name if self.city_id else "", self.zone_name)

    def equipment_list(self):
        return ServicePage.lines(self.equipment)

    def language_names(self) -> list[str]:
        """The coordinators' languages, named in the reader's language."""
        codes = [c.strip() for c in self.coordinator_languages.split(",") if c.strip()]
        return [language_name(code) for code in codes]

    def map_link(self) -> str:
        """The editor's map link, or an OpenStreetMap search for the address (or the clinic in its city)."""
        if self.map_url:
            return self.map_url
        known_address = self.address_en and "confirmed" not in self.address_en
        where = ", ".join(p for p in (self.address_en if known_address else self.title_en, self.city.name_en,
                                      "Kazakhstan") if p)
        return "https://www.openstreetmap.org/search?query=" + quote(where)

    def get_context(self, request, *args, **kwargs):
        from .currency import display_currency  # lazy: a cycle, catalog.currency imports these models

        context = super().get_context(request, *args, **kwargs)
        context["offerings"] = list(
            Offering.objects.bookable().filter(clinic=self)
            .select_related("page").order_by("page__title")
        )
        context["currency"] = display_currency(request)
        context["missing_translation"] = missing_translation(self, ("summary", "description", "address"))
        context["json_ld"] = json_ld({
            "@context": "https://schema.org", "@type": "MedicalClinic", "name": self.title,
            "description": self.summary, "url": self.full_url,
            "address": {"@type": "PostalAddress", "addressLocality": self.city.name,
                        "streetAddress": self.address or None, "addressCountry": "KZ"},
        })
        return context


class OfferingQuerySet(models.QuerySet):
    def bookable(self):
        """What a patient may see and book: an active offering on a published service page at a published clinic.

        The one rule: service and clinic pages, the catalogue filters, both APIs and the hold all ask it."""
        return self.filter(is_active=True, page__live=True, clinic__live=True)


class Offering(Orderable):
    """A clinic's offer of a service: price, deposit, course shape, and whether a clinician reviews first."""

    SINGLE, CONSECUTIVE, DAYS = "single", "consecutive_working_days", "days"
    SPACING_CHOICES = [
        (SINGLE, _("One session")),
        (CONSECUTIVE, _("One session each working day")),
        (DAYS, _("Sessions on given days")),
    ]
    TREATMENT, CONSULTATION, SECOND_OPINION = "treatment", "consultation", "second_opinion"
    KIND_CHOICES = [
        (TREATMENT, _("Treatment")),
        (CONSULTATION, _("Online consultation with a specialist (video call; the resource is a clinician)")),
        (SECOND_OPINION, _("Second opinion from records (no call)")),
    ]
    page = ParentalKey(ServicePage, on_delete=models.CASCADE, related_name="offerings")
    clinic = models.ForeignKey(ClinicPage, on_delete=models.PROTECT, related_name="offerings",
                               verbose_name=_("clinic"))
    currency = models.CharField(_("currency"), max_length=3, default="KZT")
    price = MinorUnitsField(_("price (tenge)"), validators=[MinValueValidator(0)])
    deposit = MinorUnitsField(_("deposit (tenge)"), validators=[MinValueValidator(0)],
                              help_text=_("Paid by card to book; the whole price if nothing is paid at the clinic."))
    sessions = models.PositiveIntegerField(_("sessions"), default=1, validators=[MinValueValidator(1)])
    session_minutes = models.PositiveIntegerField(_("minutes per session"), default=60,
                                                  validators=[MinValueValidator(5)])
    spacing = models.CharField(_("spacing"), max_length=32, choices=SPACING_CHOICES, default=SINGLE)
    spacing_offsets = models.JSONField(_("day offsets"), default=list, blank=True,
                                       help_text=_("For 'sessions on given days': e.g. [0, 2, 5]."))
    stay_days = models.PositiveIntegerField(_("typical stay (days)"), default=1)
    review_required = models.BooleanField(_("clinical review before payment"), default=True)
    hold_minutes = models.PositiveIntegerField(_("hold time (minutes)"), default=15,
                                               validators=[MinValueValidator(1)])
    notice_hours = models.PositiveIntegerField(_("minimum notice (hours)"), default=48)
    horizon_days = models.PositiveIntegerField(_("booking horizon (days)"), default=180)
    slot_step_minutes = models.PositiveIntegerField(_("slot step (minutes)"), default=30,
                                                    validators=[MinValueValidator(5)])
    is_active = models.BooleanField(_("bookable"), default=True)
    is_demo = models.BooleanField(_("demo figures"), default=True)
    kind = models.CharField(_("kind"), max_length=20, choices=KIND_CHOICES, default=TREATMENT, db_index=True,
                            help_text=_("An online consultation is booked and paid like a direct slot; its "
                                        "resource is the clinician."))

    panels = [
        FieldPanel("clinic"),
        FieldPanel("kind"),
        FieldRowPanel([FieldPanel("price"), FieldPanel("deposit"), FieldPanel("currency")]),
        FieldRowPanel([FieldPanel("sessions"), FieldPanel("session_minutes"), FieldPanel("stay_days")]),
        FieldRowPanel([FieldPanel("spacing"), FieldPanel("spacing_offsets")]),
        FieldRowPanel([FieldPanel("review_required"), FieldPanel("is_active"), FieldPanel("is_demo")]),
        FieldRowPanel([FieldPanel("hold_minutes"), FieldPanel("notice_hours"), FieldPanel("horizon_days"),
                       FieldPanel("slot_step_minutes")]),
    ]

    class Meta(Orderable.Meta):
        verbose_name = _("offering")
        constraints = [
            models.CheckConstraint(condition=models.Q(deposit__lte=models.F("price")), name="deposit_not_above_price"),
        ]


    objects = OfferingQuerySet.as_manager()

    def is_bookable(self, page_live: bool | None = None) -> bool:
        """The same rule as ``Offering.objects.bookable()``, for one offering already in hand (``page_live``
        stands in for the page's state in an editor's preview of a page not yet published)."""
        return self.is_active and (self.page.live if page_live is None else page_live) and self.clinic.live

    def __str__(self):
        return f"{self.page.title} @ {self.clinic.title}"

    def clean(self):
        errors = {}
        if self.price is not None and self.deposit is not None and self.deposit > self.price:
            errors["deposit"] = _("The deposit cannot be more than the price.")
        if self.spacing == self.DAYS:
            offsets = self.spacing_offsets or []
            if (len(offsets) != self.sessions or not all(isinstance(o, int) and o >= 0 for o in offsets)
                    or offsets[:1] != [0] or sorted(offsets) != offsets):
                errors["spacing_offsets"] = _("Give one rising day offset per session, starting with 0.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_course(self) -> bool:
        return self.sessions > 1

"""Read-only catalogue API: services with their offerings, in the asked language.

Also the API's shared error shape (``Problem``: ``{"code", "message"}``) and ``ApiError``; the booking API
imports them from here (portal/api.py imports both routers, so they cannot live there).
"""

import json
from typing import Any, Literal, get_args
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from django.utils import translation
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import LimitOffsetPagination
from pydantic import TypeAdapter

from portal import pagecache

from .forms import CatalogueFilterForm
from .listing import KIND_ORDER, filtered_services
from .models import Offering, ServicePage, SpecialtyPage

router = Router(tags=["catalogue"])
LANGS = {code for code, _ in settings.LANGUAGES}
MAX_LIMIT = 100
MAX_OFFSET = 100_000


class Problem(Schema):
    """Every refusal of the API: a stable ``code`` for programs and a translated ``message`` for people."""

    code: str
    message: str


class ApiError(HttpError):
    """An HttpError with a stable code; portal/api.py turns it into a ``Problem`` body."""

    def __init__(self, status_code: int, code: str, message) -> None:
        super().__init__(status_code, str(message))
        self.code = code


class FieldProblem(Schema):
    """One value that could not be read: where it was (``query.start``, ``body.offering``...) and why."""

    field: str
    message: str


class ValidationProblem(Problem):
    """A 422: the values of the wrong type or shape, each in ``fields`` (code ``invalid``)."""

    fields: list[FieldProblem]


def responses(ok: dict, *errors: int, problem=Problem) -> dict:
    """The ``response=`` of an operation: its success body(ies) and a ``Problem`` for each error status
    (a ``ValidationProblem`` for 422)."""
    return {**ok, **{status: ValidationProblem if status == 422 else problem for status in errors}}


class Pagination(LimitOffsetPagination):
    """Every list of the API: ``limit`` (1-100, 50 by default) items from ``offset`` (at most 100,000: bounded
    before it reaches the database), answered as ``{items, count, next}``; ``next`` is the address of the
    following page, null on the last one."""

    class Input(Schema):
        limit: int = Field(50, ge=1, le=MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    class Output(Schema):
        items: list[Any]
        count: int
        next: str | None

    def __init__(self, **kwargs):
        super().__init__(max_limit=MAX_LIMIT, **kwargs)

    def paginate_queryset(self, queryset, pagination, request, **params):
        return page_of(queryset, pagination.limit, pagination.offset, request)


def next_page(request, count: int, limit: int, offset: int, params: dict | None = None) -> str | None:
    """The address of the page after ``[offset, offset + limit)``, or None; from ``params`` (else the query)."""
    if offset + limit >= count:
        return None
    query = dict(request.GET.items()) if params is None else {k: v for k, v in params.items() if v is not None}
    query.update(limit=limit, offset=offset + limit)
    return f"{request.path}?{urlencode(sorted(query.items()))}"


class Each:
    """A queryset whose items are converted by ``convert`` (in ``lang``) only for the page taken of it."""

    def __init__(self, queryset, convert, lang: str | None = None):
        self.queryset, self.convert, self.lang = queryset, convert, lang

    def count(self) -> int:
        return self.queryset.count()

    def __getitem__(self, window: slice) -> list:
        with translation.override(self.lang):
            return [self.convert(item) for item in self.queryset[window]]


def page_of(items, limit: int, offset: int, request, params: dict | None = None) -> dict:
    """One page of a queryset, an ``Each`` or a list: ``{items, count, next}``."""
    count = len(items) if isinstance(items, list | tuple) else items.count()
    return {"items": list(items[offset: offset + limit]), "count": count,
            "next": next_page(request, count, limit, offset, params)}


def paged(schema) -> type[Schema]:
    """The OpenAPI shape of a page of ``schema`` (what ``@paginate(Pagination)`` answers)."""
    return type(f"Paged{schema.__name__}", (Pagination.Output,), {"__annotations__": {"items": list[schema]}})


# What an offering is (Offering.KIND_CHOICES): a treatment at the clinic; an online consultation (a video call
# with a clinician, booked and paid like a direct slot); a second opinion (a written opinion from the patient's
# records and questions, requested without a call, then turned into a treatment request with one click).
OfferingKind = Literal["treatment", "consultation", "second_opinion"]
OFFERING_KINDS: tuple[str, ...] = get_args(OfferingKind)
KIND_DESCRIPTION = ("What the offering is: `treatment` (a course at the clinic), `consultation` (an online video "
                    "consultation with one of the clinic's specialists, booked and paid like a direct slot) or "
                    "`second_opinion` (a specialist's written opinion from the patient's records and questions, "
                    "without a call; it can become a treatment request).")


def use_kind(kind: str | None) -> str | None:
    """The offering kind asked for (``?kind=``), or None for every kind; a 400 ``kind`` for an unknown one."""
    if kind in (None, ""):
        return None
    if kind not in OFFERING_KINDS:
        raise ApiError(400, "kind", gettext("Unknown kind “%(kind)s”. Use one of: %(kinds)s.")
                       % {"kind": kind[:40], "kinds": ", ".join(OFFERING_KINDS)})
    return kind


class OfferingOut(Schema):
    """One clinic's offer of a service: the catalogue API and the booking API share this shape."""

    id: int
    kind: OfferingKind = Field(description=KIND_DESCRIPTION)
    service: str
    service_name: str
    clinic: str
    clinic_slug: str
    city: str
    timezone: str
    currency: str
    price: int
    deposit: int
    sessions: int
    session_minutes: int
    spacing: str
    spacing_offsets: list[int]
    stay_days: int
    review_required: bool
    hold_minutes: int
    demo: bool


class ServiceOut(Schema):
    slug: str
    name: str
    specialty: str | None
    summary: str
    url: str
    price_from: int | None = Field(description="The lowest price of its treatments, in minor units (consultations "
                                               "and second opinions are not counted).")
    typical_sessions: int
    typical_stay_days: int
    has_consultation: bool = Field(description="A clinic offers an online consultation (video call) with a specialist "
                                               "for it: the service page's “talk to a specialist before you travel”.")
    has_second_opinion: bool = Field(description="A clinic offers a second opinion from the patient's records "
                                                 "(no call) for it.")


PagedServiceOut = paged(ServiceOut)
SERVICE_LIST = TypeAdapter(PagedServiceOut)
# the columns a listed service needs (a page row has a column per language of each translated field)
SERVICE_COLUMNS = ("id", "title", "slug", "url_path", "path", "depth", "summary", "typical_stay_days",
                   "typical_sessions", "content_type_id", "live")
SERVICES_CACHE = pagecache.LocalLRU(256, 16 * 1024 * 1024)


class ServiceDetailOut(ServiceOut):
    description: str
    who_for: str
    course: str
    documents: list[str]
    included: list[str]
    figures_are_estimates: bool
    offerings: list[OfferingOut]


class ServiceFilters(Schema):
    lang: str = "en"
    q: str | None = None
    specialty: str | None = None
    city: str | None = None
    clinic: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    stay_max: int | None = None
    # bounded here: an offset beyond PostgreSQL's bigint was a 500 (TRAPS.md)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


def use_language(lang: str) -> str:
    if lang not in LANGS:
        raise ApiError(400, "lang", gettext("Unknown language “%(lang)s”. Use one of: %(langs)s.")
                       % {"lang": lang[:20], "langs": ", ".join(sorted(LANGS))})
    return lang


def offering_out(o: Offering) -> dict:
    """Needs ``o.page`` and ``o.clinic.city`` (select_related them)."""
    return {
        "id": o.id, "kind": o.kind, "service": o.page.slug, "service_name": o.page.title, "clinic": o.clinic.title,
        "clinic_slug": o.clinic.slug, "city": o.clinic.city.name, "timezone": o.clinic.zone_name,
        "currency": o.currency, "price": o.price, "deposit": o.deposit, "sessions": o.sessions,
        "session_minutes": o.session_minutes, "spacing": o.spacing, "spacing_offsets": o.spacing_offsets or [],
        "stay_days": o.stay_days, "review_required": o.review_required, "hold_minutes": o.hold_minutes,
        "demo": o.is_demo,
    }


def service_out(s, specialties, request=None) -> dict:
    """With the ``request``, Wagtail reads the sites' root paths once for it, not from the cache per service."""
    spec = specialties.get(s.path[: -ServicePage.steplen])
    return {
        "slug": s.slug, "name": s.title, "specialty": spec.slug if spec else None, "summary": s.summary or "",
        "url": s.get_url(request) or "", "price_from": getattr(s, "price_from", None),
        "typical_sessions": s.typical_sessions, "typical_stay_days": s.typical_stay_days,
        "has_consultation": bool(getattr(s, "has_consultation", False)),
        "has_second_opinion": bool(getattr(s, "has_second_opinion", False)),
    }


@router.get("/services", response=responses({200: PagedServiceOut}, 400, 422),
            summary="Search and filter the catalogue (a page: items, count, next)")
def list_services(request, filters: Query[ServiceFilters]):
    lang = use_language(filters.lang)
    # The answer for these (validated) parameters, as this process last serialised it for the current
    # page-cache version: publishing, prices and rates bump that version in every process.
    key = (pagecache.current_version(), json.dumps(filters.dict(), sort_keys=True))
    body = SERVICES_CACHE.get(key)
    if body is None:
        form = CatalogueFilterForm(filters.dict(exclude={"lang", "limit", "offset"}, exclude_none=True))
        if not form.is_valid():
            raise ApiError(400, "filters", "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        limit, offset = filters.limit, filters.offset
        with translation.override(lang):
            specialties = {s.path: s for s in SpecialtyPage.objects.live()}
            found = filtered_services(None, form.cleaned_data).order_by("-relevance", "title")
            page = page_of(found.only(*SERVICE_COLUMNS), limit, offset, request, filters.dict())
            page["items"] = [service_out(s, specialties, request) for s in page["items"]]
            body = SERVICE_LIST.dump_json(SERVICE_LIST.validate_python(page))
        SERVICES_CACHE.set(key, body, len(body))
    return HttpResponse(body, content_type="application/json; charset=utf-8")


@router.get("/services/{slug}", response=responses({200: ServiceDetailOut}, 400, 404, 422),
            summary="One service with its offerings",
            description="Its offerings of every kind (`kind`): treatments first, then online consultations and "
                        "second opinions, each by price.")
def get_service(request, slug: str, lang: str = "en"):
    lang = use_language(lang)
    with translation.override(lang):
        service = ServicePage.objects.live().filter(slug=slug).first()
        if service is None:
            # translated slugs: accept the slug of any language
            for code in LANGS:
                service = ServicePage.objects.live().filter(**{f"slug_{code.replace('-', '_')}": slug}).first()
                if service:
                    break
        if service is None:
            raise ApiError(404, "not_found", gettext("There is no such service."))
        specialties = {s.path: s for s in SpecialtyPage.objects.live()}
        offerings = list(service.offerings.bookable().select_related("page", "clinic__city")
                         .annotate(kind_order=KIND_ORDER).order_by("kind_order", "price", "id"))
        data = service_out(service, specialties)
        data["price_from"] = min((o.price for o in offerings if o.kind == Offering.TREATMENT), default=None)
        data["has_consultation"] = any(o.kind == Offering.CONSULTATION for o in offerings)
        data["has_second_opinion"] = any(o.kind == Offering.SECOND_OPINION for o in offerings)
        data.update({
            "description": service.description or "", "who_for": service.who_for or "",
            "course": service.course or "", "documents": service.document_list(),
            "included": service.included_list(), "figures_are_estimates": service.figures_are_estimates,
            "offerings": [offering_out(o) for o in offerings],
        })
        return data

"""The public catalogue listing: search in every language and filters, in a fixed number of queries."""

from django.core.paginator import Paginator
from django.db.models import Case, Count, Exists, IntegerField, Min, OuterRef, Q, Subquery, Value, When
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from portal import pagecache

from .currency import display_currency
from .forms import CatalogueFilterForm
from .models import City, ClinicPage, Offering, ServicePage, SpecialtyPage, fold, search_filter, title_filter

PER_PAGE = 20
MAX_TERMS = 8
UNCACHED_FILTERS = ("q", "price_min", "price_max", "stay_max")
# Offerings in the order pages and the API list them: treatments, then online consultations, then second opinions.
KIND_ORDER = Case(When(kind=Offering.TREATMENT, then=Value(0)), When(kind=Offering.CONSULTATION, then=Value(1)),
                  default=Value(2), output_field=IntegerField())


def filtered_services(index_page, data):
    """Live services under the catalogue matching cleaned filter data, annotated with price_from and, for a
    search, ``relevance``: 4 when the title in the reader's language starts with the query, 3 when every
    word is in that title, 2 when in a name or synonym in any language, else 1.

    Also ``has_consultation`` and ``has_second_opinion``: a clinic offers an online consultation (a second opinion)
    for the service — what its page shows under "talk to a specialist before you travel" — at the clinic, in the
    city, filtered for, if any (prices and stays are the treatments' and do not apply)."""
    services = ServicePage.objects.live().descendant_of(index_page) if index_page else ServicePage.objects.live()
    terms = fold(data.get("q") or "").split()[:MAX_TERMS]
    lang = get_language() or "en"
    in_title, in_names = Q(), Q()
    for term in terms:
        services = services.filter(search_filter("search_text", term))
        in_title &= title_filter(term, lang)
        in_names &= search_filter("search_names", term)
    starts = (title_filter(terms[0], lang, first=True) & in_title) if terms else Q()
    services = services.annotate(relevance=Case(
        When(starts, then=Value(4)), When(in_title, then=Value(3)), When(in_names, then=Value(2)),
        default=Value(1), output_field=IntegerField()) if terms else Value(0))
    if data.get("specialty"):
        spec = SpecialtyPage.objects.live().filter(slug=data["specialty"]).only("path").first()
        services = services.filter(path__startswith=spec.path) if spec else services.none()
    offers = Offering.objects.bookable().filter(page=OuterRef("pk"))
    if data.get("city"):
        offers = offers.filter(clinic__city__slug=data["city"])
    if data.get("clinic"):
        offers = offers.filter(clinic__slug=data["clinic"])
    before = offers  # consultations and second opinions, where the patient looks
    offers = offers.filter(kind=Offering.TREATMENT)  # prices, stays and clinic counts are the treatments'
    if data.get("price_min") is not None:
        offers = offers.filter(price__gte=data["price_min"] * 100)
    if data.get("price_max") is not None:
        offers = offers.filter(price__lte=data["price_max"] * 100)
    if data.get("stay_max") is not None:
        offers = offers.filter(stay_days__lte=data["stay_max"])
    filtering = any(data.get(k) not in (None, "") for k in ("city", "clinic", "price_min", "price_max", "stay_max"))
    if filtering:
        services = services.filter(Exists(offers))
    price_from = offers.order_by().values("page").annotate(m=Min("price")).values("m")
    clinics = offers.order_by().values("page").annotate(c=Count("clinic", distinct=True)).values("c")
    return services.annotate(
        price_from=Subquery(price_from, output_field=IntegerField()),
        clinic_count=Subquery(clinics, output_field=IntegerField()),
        has_consultation=Exists(before.filter(kind=Offering.CONSULTATION)),
        has_second_opinion=Exists(before.filter(kind=Offering.SECOND_OPINION)),
    )


def catalogue_context(request, index_page):
    form = CatalogueFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    if form.is_bound and not form.is_valid():
        # keep the valid filters, drop the bad ones; the form shows what was wrong
        data = {k: v for k, v in getattr(form, "cleaned_data", {}).items() if k not in form.errors}
    services = filtered_services(index_page, data).order_by("-relevance", "title")
    paginator = Paginator(services.only(
        "id", "title", "slug", "url_path", "path", "depth", "summary", "typical_stay_days", "typical_sessions",
        "content_type_id", "live", "locked",
    ), PER_PAGE)
    page_number = request.GET.get("page") or 1
    page_obj = paginator.get_page(page_number)
    specialties = list(SpecialtyPage.objects.live().order_by("order", "title"))
    by_path = {s.path: s for s in specialties}
    for service in page_obj.object_list:
        service.specialty = by_path.get(service.path[: -ServicePage.steplen])
    query = request.GET.copy()
    query.pop("page", None)
    cities = list(City.objects.all())
    clinics = list(ClinicPage.objects.live().only("id", "title", "slug").order_by("title"))
    declare_cacheable_query(request, form, data, page_obj, specialties, cities, clinics)
    return {
        "form": form,
        "page_obj": page_obj,
        "services": page_obj.object_list,
        "result_count": paginator.count,
        "specialties": specialties,
        "cities": cities,
        "clinics": clinics,
        "currency": display_currency(request),
        "querystring": query.urlencode(),
        "filters_active": any(data.get(k) not in (None, "") for k in
                              ("specialty", "city", "clinic", "price_min", "price_max", "stay_max")),
        "bad_page": str(page_number) != str(page_obj.number) and request.GET.get("page") is not None,
        "empty_message": _("No treatment matches these filters. Try fewer words or remove a filter."),
    }


def declare_cacheable_query(request, form, data, page_obj, specialties, cities, clinics) -> None:
    """Tell the page cache which listings it may store: the catalogue filtered by specialty, city and clinic
    (values that exist) on a page that exists. A search, a price or stay bound, a refused value or a page number
    past the end is rendered for its visitor and never stored, so junk queries create no cache entries."""
    if (form.is_bound and not form.is_valid()) or any(data.get(k) not in (None, "") for k in UNCACHED_FILTERS):
        request.page_cache_query = None
        return
    known = {"specialty": {s.slug for s in specialties}, "city": {c.slug for c in cities},
             "clinic": {c.slug for c in clinics}}
    params = {}
    for name, slugs in known.items():
        value = data.get(name)
        if value:
            if value not in slugs:
                request.page_cache_query = None
                return
            params[name] = value
    asked = request.GET.get("page")
    if asked is not None:
        if asked != str(page_obj.number):
            request.page_cache_query = None
            return
        params["page"] = asked
    pagecache.declare_query(request, params)

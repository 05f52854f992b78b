"""Consultations and second opinions in the catalogue: each offering's ``kind`` in both APIs (and ``?kind=`` on the
offerings list), each service's ``has_consultation``/``has_second_opinion`` as its page shows them, the listing's
badges, and the OpenAPI document describing all of it."""

import pytest
from bs4 import BeautifulSoup
from django.utils import translation

from catalog.api import OFFERING_KINDS
from catalog.listing import filtered_services
from catalog.models import Offering, ServicePage, SpecialtyIndexPage

pytestmark = pytest.mark.django_db
BEFORE = (Offering.CONSULTATION, Offering.SECOND_OPINION)


def _service_with_consultation() -> ServicePage:
    offering = Offering.objects.bookable().filter(kind=Offering.CONSULTATION).order_by("id").first()
    assert offering is not None, "the demo data has online consultations"
    return offering.page


def _service_without() -> ServicePage:
    service = (ServicePage.objects.live().filter(offerings__is_active=True)
               .exclude(offerings__kind__in=BEFORE).distinct().order_by("pk").first())
    assert service is not None
    return service


def _url(page, lang="en"):
    with translation.override(lang):
        return page.specific.get_url()


def test_the_kinds_are_the_models(client):
    assert OFFERING_KINDS == tuple(code for code, _label in Offering.KIND_CHOICES)


def test_offerings_list_says_each_kind_and_filters_by_it(client):
    everything = client.get("/api/v1/offerings", {"limit": 100}).json()
    assert everything["count"] == Offering.objects.bookable().count()
    assert {o["kind"] for o in everything["items"]} <= set(OFFERING_KINDS)
    total = 0
    for kind in OFFERING_KINDS:
        page = client.get("/api/v1/offerings", {"kind": kind, "limit": 100}).json()
        assert page["count"] == Offering.objects.bookable().filter(kind=kind).count() > 0, kind
        assert page["items"] and {o["kind"] for o in page["items"]} == {kind}
        total += page["count"]
    assert total == everything["count"]
    # the next page keeps the filter
    first = client.get("/api/v1/offerings", {"kind": Offering.TREATMENT, "limit": 5}).json()
    assert "kind=treatment" in first["next"]
    assert {o["kind"] for o in client.get(first["next"]).json()["items"]} == {Offering.TREATMENT}
    # with a service: that service's consultations, cheapest first
    service = _service_with_consultation()
    listed = client.get("/api/v1/offerings", {"service": service.slug, "kind": "consultation"}).json()["items"]
    expected = list(Offering.objects.bookable().filter(page=service, kind=Offering.CONSULTATION)
                    .order_by("price", "id").values_list("id", flat=True))
    assert [o["id"] for o in listed] == expected and expected
    # an unknown kind is refused with its own code
    refused = client.get("/api/v1/offerings", {"kind": "surgery"})
    assert refused.status_code == 400 and refused.json()["code"] == "kind"


def test_a_service_lists_its_consultations_and_second_opinions(client):
    service = _service_with_consultation()
    detail = client.get(f"/api/v1/services/{service.slug}").json()
    kinds = [o["kind"] for o in detail["offerings"]]
    bookable = Offering.objects.bookable().filter(page=service)
    assert len(kinds) == bookable.count()
    assert set(kinds) == set(bookable.values_list("kind", flat=True)) >= {Offering.TREATMENT, Offering.CONSULTATION}
    # treatments first, then consultations, then second opinions
    assert kinds == sorted(kinds, key=OFFERING_KINDS.index)
    treatments = bookable.filter(kind=Offering.TREATMENT).order_by("price")
    assert detail["price_from"] == treatments.first().price  # the treatments' price, not a consultation's
    assert detail["offerings"][0]["price"] > 0
    assert detail["has_consultation"] is True
    assert detail["has_second_opinion"] is bookable.filter(kind=Offering.SECOND_OPINION).exists()

    without = client.get(f"/api/v1/services/{_service_without().slug}").json()
    assert {o["kind"] for o in without["offerings"]} == {Offering.TREATMENT}
    assert without["has_consultation"] is False and without["has_second_opinion"] is False


def test_service_flags_match_the_service_pages(client):
    consultations = set(Offering.objects.bookable().filter(kind=Offering.CONSULTATION)
                        .values_list("page__slug", flat=True))
    opinions = set(Offering.objects.bookable().filter(kind=Offering.SECOND_OPINION)
                   .values_list("page__slug", flat=True))
    url, seen = "/api/v1/services?limit=100&lang=en", 0
    while url:
        page = client.get(url).json()
        for item in page["items"]:
            assert item["has_consultation"] is (item["slug"] in consultations), item["slug"]
            assert item["has_second_opinion"] is (item["slug"] in opinions), item["slug"]
        seen += len(page["items"])
        url = page["next"]
    assert seen == ServicePage.objects.live().count() and consultations
    # the same flags as the page's "talk to a specialist before you travel"
    for service, shown in ((_service_with_consultation(), True), (_service_without(), False)):
        html = client.get(_url(service)).content.decode()
        assert ('id="before-you-travel"' in html) is shown, service.slug


def test_the_listing_shows_a_consultation_badge(client):
    with_consultation, without = _service_with_consultation(), _service_without()
    for service, shown in ((with_consultation, True), (without, False)):
        html = client.get(_url(SpecialtyIndexPage.objects.get()), {"q": service.title}).content.decode()
        soup = BeautifulSoup(html, "html.parser")
        link = _url(service)
        results = [li for li in soup.select("li.result") if li.find("a", href=link)]
        assert len(results) == 1, service.slug
        badge = results[0].select_one("a.badge-consultation")
        assert (badge is not None) is shown, service.slug
        if shown:
            assert badge["href"] == f"{link}#before-you-travel"
            assert badge.get_text(strip=True) == "Online consultation (video call)"
    # in Russian: the badge is the service page's own translated label
    html = client.get(_url(SpecialtyIndexPage.objects.get(), "ru"), {"q": with_consultation.title_ru}).content.decode()
    with translation.override("ru"):
        label = translation.gettext("Online consultation (video call)")
    assert label != "Online consultation (video call)" and label in html


def test_badges_follow_the_place_filters():
    """Offered at the clinic filtered for: another clinic's consultation does not badge the service."""
    for consultation in (Offering.objects.bookable().filter(kind=Offering.CONSULTATION)
                         .select_related("page", "clinic").order_by("id")):
        service = consultation.page
        elsewhere = (Offering.objects.bookable().filter(page=service, kind=Offering.TREATMENT)
                     .exclude(clinic=consultation.clinic).order_by("id").first())
        if elsewhere is not None:
            break
    else:
        pytest.fail("the demo data has a service with a consultation and treatments at two clinics")
    Offering.objects.filter(page=service, kind=Offering.CONSULTATION).exclude(pk=consultation.pk).update(
        is_active=False)
    here = filtered_services(None, {"clinic": consultation.clinic.slug}).get(pk=service.pk)
    there = filtered_services(None, {"clinic": elsewhere.clinic.slug}).get(pk=service.pk)
    assert here.has_consultation and not there.has_consultation
    assert filtered_services(None, {}).get(pk=service.pk).has_consultation


def test_the_openapi_document_describes_the_kinds(client):
    doc = client.get("/api/v1/openapi.json").json()
    schemas = doc["components"]["schemas"]
    kind = schemas["OfferingOut"]["properties"]["kind"]
    assert kind["enum"] == list(OFFERING_KINDS) and "consultation" in kind["description"]
    assert "kind" in schemas["OfferingOut"]["required"]
    for flag in ("has_consultation", "has_second_opinion"):
        for schema in ("ServiceOut", "ServiceDetailOut"):
            prop = schemas[schema]["properties"][flag]
            assert prop["type"] == "boolean" and prop["description"], (schema, flag)
    listing = doc["paths"]["/api/v1/offerings"]["get"]
    assert "kind" in {p["name"] for p in listing["parameters"]}
    assert "second_opinion" in listing["description"]

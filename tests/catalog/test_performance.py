"""Fast for everyone: the page cache (anonymous and signed in), what may enter it, and the catalogue API's cache.

Speed itself is measured by `make bench` / `make bench-ci` (tests/bench/run.py); these tests pin down what makes
it fast as query counts and cache behaviour, and that being fast never shows a visitor a wrong page."""

import pytest
from django.conf import settings
from django.contrib.messages import constants as message_levels
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from catalog.models import ClinicPage, Offering, ServicePage, SpecialtyIndexPage, SpecialtyPage
from portal import pagecache

pytestmark = pytest.mark.django_db


def url_in(page, lang):
    with translation.override(lang):
        return page.specific.get_url()


def service_page():
    return ServicePage.objects.live().filter(offerings__is_active=True).distinct().order_by("pk").first()


def listing_url(lang="en"):
    return url_in(SpecialtyIndexPage.objects.get(), lang)


def entries() -> int:
    """How many pages this process holds; each stored page is also one entry in the shared cache."""
    return len(pagecache.LOCAL)


def queries(client, url, **extra):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, **extra)
    return response, len(ctx.captured_queries)


@pytest.fixture(autouse=True)
def _empty_local_cache():
    pagecache.LOCAL.clear()
    yield
    pagecache.LOCAL.clear()


# --- anonymous visitors -----------------------------------------------------------------------------------------


def test_a_cached_page_is_served_without_a_query_and_byte_for_byte(client):
    url = url_in(service_page(), "ru")
    first = client.get(url)
    assert first["X-Page-Cache"] == "miss"
    hit, n = queries(client, url)
    assert hit["X-Page-Cache"] == "hit" and n == 0
    assert hit.content == first.content
    assert hit["Content-Type"] == first["Content-Type"]
    assert hit["Content-Security-Policy"] == first["Content-Security-Policy"]


def test_the_shared_copy_serves_another_process(client):
    """A second gunicorn process has nothing in its own memory: it takes the page from the shared cache."""
    url = url_in(service_page(), "en")
    html = client.get(url).content
    pagecache.LOCAL.clear()  # as another process
    again, n = queries(client, url)
    assert again["X-Page-Cache"] == "hit" and n == 0 and again.content == html


def test_a_publish_in_another_process_reaches_this_one(client):
    """Another process publishes: it bumps the shared version; this process's own copy is not served again."""
    page = service_page()
    url = url_in(page, "en")
    client.get(url)
    assert client.get(url)["X-Page-Cache"] == "hit"
    ServicePage.objects.filter(pk=page.pk).update(title_en="Renamed by an editor elsewhere")
    cache.incr(pagecache.VERSION_KEY)  # what invalidate() does in the other process (its LOCAL.clear() is its own)
    fresh = client.get(url)
    assert fresh["X-Page-Cache"] == "miss"
    assert "Renamed by an editor elsewhere" in fresh.content.decode()


def test_a_lost_version_does_not_revive_old_pages(client):
    """Redis flushed or restarted: the version starts again, at a number no old local copy carries."""
    page = service_page()
    url = url_in(page, "en")
    client.get(url)
    ServicePage.objects.filter(pk=page.pk).update(title_en="Changed while the cache was flushed")
    cache.delete(pagecache.VERSION_KEY)
    assert "Changed while the cache was flushed" in client.get(url).content.decode()


@pytest.mark.parametrize("query", [
    "utm_source=x", "junk=1", "q=x&junk=1", "specialty=nope-not-a-specialty", "page=999", "page=abc",
    "q=heart", "price_min=100", "city=almaty&city=astana", "specialty=" + "a" * 200,
])
def test_junk_query_strings_create_no_cache_entries(client, query):
    url = listing_url()
    client.get(url)  # the plain catalogue: one entry
    before = entries()
    for _ in range(2):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200
        assert response.get("X-Page-Cache") != "hit"
    assert entries() == before
    # and the same junk on a service page, which takes no parameters at all
    service = url_in(service_page(), "en")
    client.get(service)
    before = entries()
    response = client.get(f"{service}?{query}")
    assert response.status_code == 200 and response.get("X-Page-Cache") != "hit"
    assert entries() == before


def test_catalogue_filters_with_existing_values_are_cached_as_one_page(client):
    url = listing_url()
    specialty = SpecialtyPage.objects.live().order_by("pk").first()
    assert client.get(f"{url}?specialty={specialty.slug}")["X-Page-Cache"] == "miss"
    # the filter form sends its empty fields too; the order of parameters does not matter
    submitted = f"{url}?q=&city=&specialty={specialty.slug}&clinic=&price_min=&price_max=&stay_max="
    hit = client.get(submitted)
    assert hit["X-Page-Cache"] == "hit"
    clinic = ClinicPage.objects.live().order_by("pk").first()
    both = client.get(f"{url}?clinic={clinic.slug}&specialty={specialty.slug}")
    assert both["X-Page-Cache"] == "miss"
    assert client.get(f"{url}?specialty={specialty.slug}&clinic={clinic.slug}")["X-Page-Cache"] == "hit"


def test_a_search_is_answered_but_not_stored(client):
    url = listing_url()
    service = service_page()
    response = client.get(url, {"q": service.title_en})
    assert response.status_code == 200 and service.title_en in response.content.decode()
    assert response.get("X-Page-Cache") is None and entries() == 0


# --- signed-in patients ------------------------------------------------------------------------------------------


def test_a_signed_in_patient_gets_the_cached_page_with_their_own_header_in_two_queries(client, patient):
    url = url_in(service_page(), "ru")
    anonymous = client.get(url).content.decode()
    assert "/accounts/login/" in anonymous
    client.force_login(patient)
    response, n = queries(client, url)
    html = response.content.decode()
    assert response["X-Page-Cache"] == "personal"
    assert n <= 2  # the session and the user; nothing of the page
    with translation.override("ru"):
        from django.urls import reverse

        assert f'href="{reverse("patient_dashboard")}"' in html
    assert "/accounts/login/" not in html
    assert "private" in response["Cache-Control"]
    # everything else is the page the anonymous visitor got
    assert html.replace(html[html.index("<!--account-->"):html.index("<!--/account-->")], "") == anonymous.replace(
        anonymous[anonymous.index("<!--account-->"):anonymous.index("<!--/account-->")], "")


def test_a_signed_in_patient_first_on_a_page_stores_it_for_everyone(client, patient):
    url = url_in(service_page(), "en")
    client.force_login(patient)
    first, n_first = queries(client, url)
    assert first["X-Page-Cache"] == "personal" and first.status_code == 200
    again, n_again = queries(client, url)
    assert again["X-Page-Cache"] == "personal" and n_again <= 2 < n_first
    client.logout()
    anonymous = client.get(url)
    assert anonymous["X-Page-Cache"] == "hit"
    assert "/accounts/login/" in anonymous.content.decode()


@pytest.mark.parametrize("lang", ["ky", "zh-hans"])
def test_a_signed_in_patient_on_a_page_with_a_non_latin_address(client, patient, lang):
    """Kyrgyz pages have Cyrillic slugs: the anonymous render of a signed-in visit must keep the WSGI path intact."""
    url = url_in(service_page(), lang)
    client.force_login(patient)
    first = client.get(url)
    assert first.status_code == 200 and first["X-Page-Cache"] == "personal"
    assert client.get(url)["X-Page-Cache"] == "personal"
    client.logout()
    assert client.get(url)["X-Page-Cache"] == "hit"


def test_the_signed_in_page_keeps_the_patients_currency(client, patient):
    url = url_in(service_page(), "en")
    client.force_login(patient)
    client.cookies["currency"] = "EUR"
    html = client.get(url).content.decode()
    assert '<option value="EUR" selected>' in html
    client.cookies["currency"] = "CNY"
    html = client.get(url).content.decode()
    assert '<option value="CNY" selected>' in html


def test_a_message_waiting_for_the_patient_is_shown(client, patient, rf):
    url = url_in(service_page(), "en")
    client.get(url)
    client.force_login(patient)
    waiting = CookieStorage(rf.get("/"))._encode([Message(message_levels.SUCCESS, "Your request was sent")])
    client.cookies[CookieStorage.cookie_name] = waiting
    response = client.get(url)
    assert "Your request was sent" in response.content.decode()
    assert response.get("X-Page-Cache") != "personal"
    # shown once; the next view is the fast one again
    again = client.get(url)
    assert again["X-Page-Cache"] == "personal" and "Your request was sent" not in again.content.decode()


def test_private_pages_are_not_served_from_the_page_cache(client, patient):
    client.force_login(patient)
    response = client.get("/en/my/")
    assert response.get("X-Page-Cache") is None


# --- rendering and the API -----------------------------------------------------------------------------------------


def test_a_service_page_renders_in_a_few_queries(client):
    """A miss after a publish: Wagtail's routing (two queries a level), the page's offerings, FAQ and parents,
    the menu — and not one query for the seven language alternates (22 queries before, 26 in the issue)."""
    url = url_in(service_page(), "ru")
    client.get(url)
    pagecache.invalidate()
    response, n = queries(client, url)
    assert response.status_code == 200 and response["X-Page-Cache"] == "miss"
    assert n <= 15, "\n".join(q["sql"][:150] for q in ctx_queries(client, url))


def test_language_alternates_are_the_pages_own_addresses(rf):
    """The header's and head's alternates come from the translated url_path columns, with no lookups: they must
    be exactly what Wagtail answers, for every kind of page and language."""
    from wagtail.models import Page

    from portal.templatetags.emhana import alternates

    pages = []
    for model in {type(p.specific) for p in Page.objects.live().filter(depth__gte=2)}:
        pages += [p.specific for p in model.objects.live().order_by("pk")[:3]]
    assert {type(p).__name__ for p in pages} >= {"HomePage", "SpecialtyIndexPage", "SpecialtyPage", "ServicePage"}
    alternates({"request": rf.get("/"), "page": pages[0]})  # the sites' root paths, read once per version
    for page in pages:
        request = rf.get("/")
        expected = []
        for code, _name in settings.LANGUAGES:
            with translation.override(code):
                expected.append(page.get_url(request))
        with CaptureQueriesContext(connection) as ctx:
            got = [url for _c, _n, url in alternates({"request": rf.get("/"), "page": page})]
        assert got == expected, page
        assert len(ctx.captured_queries) == 0


def test_services_api_answers_from_memory_until_the_catalogue_changes(client):
    path = "/api/v1/services"
    first, n_first = queries(client, f"{path}?lang=ru")
    assert first.status_code == 200 and n_first <= 6, n_first
    body = first.json()
    items = body["items"] if isinstance(body, dict) else body  # a page {items, count, next}
    assert items and {"slug", "name", "url", "price_from"} <= set(items[0])
    again, n_again = queries(client, f"{path}?lang=ru")
    assert n_again == 0 and again.json() == body
    # a price change (a saved offering bumps the version in every process) shows at once
    slug = items[0]["slug"]
    offering = Offering.objects.filter(page__slug_ru=slug, is_active=True).order_by("price").first()
    offering.price, offering.deposit = 100, 0
    offering.save()
    fresh = client.get(f"{path}?lang=ru").json()
    fresh = fresh["items"] if isinstance(fresh, dict) else fresh
    assert next(s for s in fresh if s["slug"] == slug)["price_from"] == 100


def test_services_api_refusals_are_not_cached(client):
    assert client.get("/api/v1/services?lang=xx").status_code == 400
    assert client.get("/api/v1/services?lang=ru&price_min=5&price_max=1").status_code == 400
    assert client.get("/api/v1/services?lang=ru&price_min=5&price_max=1").status_code == 400


def ctx_queries(client, url):
    pagecache.invalidate()
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return ctx.captured_queries

"""The public catalogue as a visitor, an editor and an API client see it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from catalog.loader import read_services
from catalog.models import ClinicPage, Offering, ServicePage, SpecialtyIndexPage, SpecialtyPage
from portal.pagecache import invalidate

pytestmark = pytest.mark.django_db
LANGS = [code for code, _ in settings.LANGUAGES]


def url_in(page, lang):
    with translation.override(lang):
        return page.specific.get_url()


def catalogue():
    return SpecialtyIndexPage.objects.get()


def test_every_service_in_the_data_file_is_published_under_its_specialty():
    rows = read_services()
    assert len(rows) == ServicePage.objects.live().count()
    for row in rows:
        page = ServicePage.objects.get(import_key=row["slug"])
        assert page.get_parent().specific.import_key == row["specialty"]
        assert page.offerings.exists(), row["slug"]


def test_every_service_page_renders_in_all_seven_languages(client):
    services = list(ServicePage.objects.live().order_by("path"))
    for index, service in enumerate(services):
        # every service in English and Russian, and each in one more language in rotation
        for lang in ("en", "ru", LANGS[2 + index % (len(LANGS) - 2)]):
            response = client.get(url_in(service, lang))
            assert response.status_code == 200, (service.import_key, lang)
            with translation.override(lang):
                assert service.title.encode() in response.content or lang == "en"


def test_gamma_knife_is_found_in_russian_and_chinese(client):
    gk = ServicePage.objects.filter(import_key="gamma_knife_radiosurgery").first()
    if gk is None:
        pytest.fail("the catalogue has no Gamma Knife radiosurgery")
    for lang, query in (("ru", "гамма"), ("zh-hans", "伽玛刀"), ("en", "GAMMA knife"), ("kk", "Гамма")):
        response = client.get(url_in(catalogue(), lang), {"q": query})
        assert response.status_code == 200
        titles = [s.pk for s in response.context["services"]]
        assert gk.pk in titles, (lang, query)


def result_titles(client, lang, query):
    from catalog.listing import filtered_services

    with translation.override(lang):
        return [s.title for s in filtered_services(None, {"q": query}).order_by("-relevance", "title")]


def test_search_ranks_a_match_in_the_name_first(client):
    ivf = set(ServicePage.objects.filter(title_en__contains="IVF").values_list("pk", flat=True))
    assert len(ivf) >= 2  # the IVF programmes; embryo transfer, egg freezing... only mention IVF
    for lang, query in (("ru", "ЭКО"), ("zh-hans", "试管婴儿"), ("en", "IVF")):
        with translation.override(lang):
            from catalog.listing import filtered_services

            found = list(filtered_services(None, {"q": query}).order_by("-relevance", "title"))
            assert found and found[0].pk in ivf, (lang, [s.title for s in found[:3]])
            assert len(found) > 2, "other services that only mention it come after"
    response = client.get(url_in(catalogue(), "ru"), {"q": "ЭКО"})
    assert response.context["services"][0].pk in ivf


def test_search_matches_the_start_of_words_not_the_middle_of_other_words(client):
    from catalog.listing import filtered_services

    found = list(filtered_services(None, {"q": "PET"}))
    assert found and all(" pet" in s.search_text for s in found)
    assert not list(filtered_services(None, {"q": "etite"}))  # inside a word: no match
    hungry = ServicePage.objects.filter(search_text__contains="appetite").exclude(search_text__contains=" pet")
    assert not set(hungry.values_list("pk", flat=True)) & {s.pk for s in found}


def test_filter_by_city_keeps_only_services_offered_there(client):
    response = client.get(url_in(catalogue(), "en"), {"city": "shymkent"})
    services = list(response.context["services"])
    assert services and response.context["result_count"] < ServicePage.objects.live().count()
    for service in services:
        assert Offering.objects.filter(page_id=service.pk, clinic__city__slug="shymkent").exists()


def test_price_and_stay_filters_and_bad_values_give_a_message_not_an_error(client):
    url = url_in(catalogue(), "ru")
    cheap = client.get(url, {"price_max": 500000})
    assert 0 < cheap.context["result_count"] < ServicePage.objects.live().count()
    for service in cheap.context["services"]:
        assert service.price_from <= 500000 * 100
    short = client.get(url, {"stay_max": 2})
    assert all(Offering.objects.filter(page_id=s.pk, stay_days__lte=2).exists() for s in short.context["services"])
    bad = client.get(url, {"price_min": "abc", "price_max": "-5", "page": "zzz", "q": "x" * 5000, "city": "<script>"})
    assert bad.status_code == 200
    assert "<script>" not in bad.content.decode().split("</header>")[1].split("<footer")[0].replace("&lt;script&gt;", "")
    assert bad.context["form"].errors
    with translation.override("ru"):
        assert "Введите" in bad.content.decode() or "число" in bad.content.decode()


def test_absurd_page_numbers_show_the_last_page(client):
    response = client.get(url_in(catalogue(), "en"), {"page": 10**9})
    assert response.status_code == 200
    assert response.context["bad_page"] is True


@pytest.mark.parametrize("path", ["/xx/", "/en/no-such-page/", "/ru/lechenie/net-takoy/", "/zh-hans/zhiliao/%E4%B8%8D/"])
def test_unknown_language_or_slug_is_a_404(client, path):
    response = client.get(path, follow=True)
    assert response.status_code == 404


def test_service_page_has_hreflang_alternates_and_a_switcher_to_the_same_page(client):
    service = ServicePage.objects.live().first()
    response = client.get(url_in(service, "ru"))
    html = response.content.decode()
    for lang in LANGS:
        target = url_in(service, lang)
        assert f'href="{settings.SITE_URL}{target}"' in html
        assert f'href="{target}" hreflang="{lang}"' in html
    assert 'hreflang="x-default"' in html
    assert '"@type": "MedicalProcedure"' in html


def test_untranslated_field_falls_back_visibly(client):
    service = ServicePage.objects.live().first()
    ServicePage.objects.filter(pk=service.pk).update(description_kk="", summary_kk="", course_kk="")
    response = client.get(url_in(service, "kk"))
    html = response.content.decode()
    assert response.status_code == 200
    service.refresh_from_db()
    assert response.context["missing_translation"] is True
    assert service.description_ru[:40] in html or service.description_en[:40] in html


def test_currency_choice_shows_converted_prices(client):
    service = ServicePage.objects.live().first()
    url = url_in(service, "en")
    response = client.get(f"/en/currency/?code=USD&next={url}")
    assert response.status_code == 302 and response["Location"] == url
    page = client.get(url).content.decode()
    assert "USD" in page and "≈" in page
    evil = client.get("/en/currency/?code=EUR&next=https://evil.example/")
    assert evil["Location"] == "/"


def test_prices_show_in_the_visitors_currency_by_default(client):
    service = ServicePage.objects.live().first()

    def shown(lang, **headers):
        html = client.get(url_in(service, lang), **headers).content.decode()
        return re.search(r'<option value="([A-Z]{3})" selected>', html).group(1), html

    code, html = shown("zh-hans")
    assert code == "CNY" and "≈\u00a0" in html and "CNY" in html
    assert shown("ky")[0] == "KGS"
    assert shown("ru", HTTP_ACCEPT_LANGUAGE="ru-KG,ru;q=0.9")[0] == "KGS"  # the region says more than the language
    assert shown("ru")[0] == "RUB"
    client.cookies["currency"] = "EUR"
    assert shown("zh-hans")[0] == "EUR"  # a choice made in the header wins


def test_anonymous_pages_are_cached_and_publishing_refreshes_them(client):
    service = ServicePage.objects.live().first()
    url = url_in(service, "en")
    assert client.get(url)["X-Page-Cache"] == "miss"
    assert client.get(url)["X-Page-Cache"] == "hit"
    revision = service.save_revision()
    service = revision.as_object()
    revision.publish()
    assert client.get(url)["X-Page-Cache"] == "miss"


def test_query_counts_do_not_grow_with_a_tenfold_catalogue(client):
    listing = url_in(catalogue(), "ru")
    service = ServicePage.objects.live().first()
    service_url = url_in(service, "ru")

    def count(url, params=None):
        invalidate()
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params or {}).status_code == 200
        return len(ctx.captured_queries)

    count(listing), count(service_url)  # warm the site-root and rates caches, which survive publishing
    before = (count(listing), count(listing, {"q": "a", "city": "almaty"}), count(service_url))
    clinic = ClinicPage.objects.first()
    specialties = list(SpecialtyPage.objects.all())
    n = ServicePage.objects.count()
    for i in range(9 * n):
        spec = specialties[i % len(specialties)]
        page = ServicePage(title=f"Extra service {i}", slug=f"extra-{i}", summary="more of the same")
        page.title_en, page.slug_en = page.title, page.slug
        with translation.override("en"):
            spec.add_child(instance=page)
        Offering.objects.create(page=page, clinic=clinic, price=100000, deposit=1000)
    after = (count(listing), count(listing, {"q": "a", "city": "almaty"}), count(service_url))
    assert after == before


def test_loader_is_idempotent_and_keeps_the_editors_work():
    service = ServicePage.objects.get(import_key=read_services()[0]["slug"])
    revision = service.save_revision()
    draft = revision.as_object()
    draft.summary_kk = "Редактордың қысқаша сипаттамасы"
    draft.save_revision().publish()
    revisions_before = service.revisions.count()
    call_command("load_catalogue", verbosity=0)
    service.refresh_from_db()
    assert service.summary_kk == "Редактордың қысқаша сипаттамасы"
    assert service.revisions.count() == revisions_before


def test_service_api_searches_in_the_asked_language(client):
    response = client.get("/api/v1/services", {"lang": "ru", "q": "ЭКО"})
    assert response.status_code == 200
    data = response.json()["items"]
    assert data and all("name" in s for s in data)
    detail = client.get(f"/api/v1/services/{data[0]['slug']}", {"lang": "zh-hans"}).json()
    assert detail["offerings"] and detail["offerings"][0]["price"] > 0
    assert client.get("/api/v1/services", {"lang": "xx"}).status_code == 400
    assert client.get("/api/v1/services", {"price_min": 10, "price_max": 1}).status_code == 400
    assert client.get("/api/v1/services/no-such-thing").status_code == 404
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/services" in schema["paths"] and "/api/v1/holds" in schema["paths"]


def test_sitemap_lists_pages_with_language_alternates(client):
    xml = client.get("/sitemap.xml").content.decode()
    assert "<loc>" in xml and 'hreflang="zh-hans"' in xml and 'hreflang="ru"' in xml
    assert "Disallow: /desk/" in client.get("/robots.txt").content.decode()


def test_health_endpoints(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_production_settings_refuse_an_insecure_secret():
    env = {"DJANGO_ENV": "production", "PATH": "/usr/bin:/bin", "ALLOWED_HOSTS": "x.example"}
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings.production'; django.setup()"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_settings_refuse_the_placeholder_stripe_keys():
    env = {"DJANGO_ENV": "production", "PATH": "/usr/bin:/bin", "ALLOWED_HOSTS": "x.example",
           "SECRET_KEY": "k" * 64}
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings.production'; django.setup()"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode != 0 and "STRIPE_SECRET_KEY" in result.stderr
    env |= {"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_PUBLISHABLE_KEY": "pk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
            "DATA_ENCRYPTION_KEYS": "1EcZq1a3l5J8bX2nSx7dQ0yWvV4tR6uP9oK2mL3jH5g=", "DATA_HASH_KEY": "h" * 40}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr


def test_data_files_have_names_and_summaries_in_all_languages():
    data = Path(__file__).resolve().parents[2] / "catalog" / "data"
    for row in read_services():
        for lang in ("en", "ru", "kk", "ky", "uz", "tg", "zh_hans"):
            assert row["name"].get(lang) and row["summary"].get(lang), (row["slug"], lang)
        assert row["description"].get("en") and row["description"].get("ru")
    assert json.loads((data / "clinics.json").read_text())


def test_an_address_with_another_languages_slugs_redirects_to_the_page_in_the_prefix_language(client):
    response = client.get("/ru/treatments/?q=x")
    assert response.status_code == 301
    assert response["Location"] == "/ru/lechenie/?q=x"
    response = client.get("/kk/treatments/cardiac-surgery/")
    assert response.status_code == 301
    assert response["Location"].startswith("/kk/emdeu/")
    assert client.get(response["Location"]).status_code == 200
    assert client.get("/ru/no-such-page/").status_code == 404


def test_clinic_pages_give_phone_map_local_time_and_the_coordinators_languages(client):
    from bookings.demo.data import load_demo

    load_demo()  # the demo contact channels
    clinic = ClinicPage.objects.live().first()
    html = client.get(url_in(clinic, "ru")).content.decode()
    assert "казахский, русский, английский" in html
    assert "https://www.openstreetmap.org/search?query=" in html
    assert 'href="tel:+77172000000"' in html  # no phone of its own: Emhana's coordinators
    assert "UTC+05:00" in html
    ClinicPage.objects.filter(pk=clinic.pk).update(phone="+7 727 000 11 22", map_url="https://maps.example/x")
    invalidate()
    html = client.get(url_in(clinic, "ru")).content.decode()
    assert 'href="tel:+77270001122"' in html and "https://maps.example/x" in html


def test_contact_page_offers_the_configured_messengers(client):
    from bookings.demo.data import load_demo
    from cms.models import ContactChannels, InformationPage

    load_demo()
    contact = InformationPage.objects.get(import_key="info:contact")
    html = client.get(url_in(contact, "zh-hans")).content.decode()
    assert "https://wa.me/" in html and "https://t.me/" in html and "emhana-demo" in html
    ContactChannels.objects.update(telegram="", is_demo=False)
    invalidate()
    html = client.get(url_in(contact, "zh-hans")).content.decode()
    assert "https://t.me/" not in html and "https://wa.me/" in html


def test_every_public_page_has_a_meta_description(client):
    from cms.models import HomePage, InformationPage

    pages = [HomePage.objects.get(), catalogue(), ClinicPage.objects.live().first().get_parent(),
             ClinicPage.objects.live().first(), ServicePage.objects.live().first(), InformationPage.objects.first()]
    for lang in ("en", "zh-hans", "kk"):
        for page in pages:
            html = client.get(url_in(page, lang)).content.decode()
            content = re.search(r'<meta name="description" content="([^"]*)"', html).group(1)
            assert len(content.strip()) > 20, (lang, page)

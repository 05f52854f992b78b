"""The public site on a phone: home pages, search in Russian and Chinese, the language switcher,
the city filter and the display currency."""

from __future__ import annotations

import re
from urllib.parse import unquote

from .conftest import E2E, first_int, gamma_knife, listing_url, pet_ct, service_title, service_url, shoot

pytestmark = E2E


def search(page, lang: str, words: str) -> list[str]:
    page.goto(listing_url(lang))
    page.fill("#f-q", words)
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_load_state("domcontentloaded")
    return [t.strip() for t in page.locator("ul.results li.result h2").all_inner_texts()]


def test_home_page_renders_in_russian_and_chinese(page):
    for lang, script in (("ru", r"[А-Яа-яЁё]"), ("zh-hans", r"[\u4e00-\u9fff]")):
        response = page.goto(f"/{lang}/")
        assert response.status == 200, f"/{lang}/ answered {response.status}"
        assert page.locator("html").get_attribute("lang") == lang
        heading = page.locator("main h1").first
        assert heading.is_visible()
        assert re.search(script, heading.inner_text()), f"the {lang} home heading is not in {lang}"
        # nothing sticks out sideways on a 390 px phone
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
        shoot(page, f"home-{lang}")


def test_search_in_russian(page):
    service = gamma_knife()
    words, expected = ("гамма", service) if service else ("ПЭТ", pet_ct())
    titles = search(page, "ru", words)
    assert service_title(expected, "ru") in titles, titles
    if not service:
        assert any("ПЭТ-КТ" in t for t in titles), titles
    shoot(page, "search-ru")


def test_search_in_chinese(page):
    service = gamma_knife()
    words, expected = ("伽玛刀", service) if service else ("PET-CT", pet_ct())
    titles = search(page, "zh-hans", words)
    assert service_title(expected, "zh-hans") in titles, titles
    shoot(page, "search-zh-hans")


def test_language_switcher_keeps_the_service(page):
    service = pet_ct()
    page.goto(service_url(service, "ru"))
    assert page.locator("main h1").inner_text().strip() == service_title(service, "ru")
    page.locator("details.lang-switch summary").click()
    page.locator("details.lang-switch a[hreflang='zh-hans']").click()
    page.wait_for_url(re.compile(r"/zh-hans/"))
    assert unquote(page.url).endswith(service_url(service, "zh-hans"))
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("main h1").inner_text().strip() == service_title(service, "zh-hans")
    shoot(page, "service-zh-hans-after-switch")


def test_city_filter_narrows_the_results(page):
    from catalog.models import City, Offering

    page.goto(listing_url("ru"))
    everything = first_int(page.locator("p.count").inner_text())
    counts = {c.slug: Offering.objects.filter(clinic__city=c, is_active=True, clinic__live=True, page__live=True)
              .values("page").distinct().count() for c in City.objects.all()}
    city = min((slug for slug, n in counts.items() if n), key=lambda slug: counts[slug])
    if not page.locator("#f-city").is_visible():  # on a phone the filters fold away under "Filters"
        page.locator("form.filters details summary").first.click()
    page.select_option("#f-city", city)
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url(re.compile(rf"city={city}"))
    narrowed = first_int(page.locator("p.count").inner_text())
    assert 0 < narrowed < everything
    assert narrowed == counts[city]
    assert page.locator("#f-city").input_value() == city
    shoot(page, f"listing-ru-city-{city}")


def test_currency_defaults_to_the_visitors_and_switches_in_the_header(page):
    page.goto(listing_url("ru"))
    # the browser says en-US: prices also in dollars by default, before any choice
    assert re.search(r"≈\s*\d[\d\s]*\s*USD", page.locator("ul.results").inner_text())
    with page.expect_navigation():
        page.select_option("#currency-select", "EUR")  # in the header; applies on change
    page.wait_for_load_state("domcontentloaded")
    assert unquote(page.url).endswith(listing_url("ru"))
    text = page.locator("ul.results").inner_text()
    assert re.search(r"≈\s*\d[\d\s]*\s*EUR", text) and "USD" not in text, text[:500]
    # and it sticks: the service page shows euros too
    page.goto(service_url(pet_ct(), "ru"))
    assert re.search(r"≈\s*\d[\d\s]*\s*EUR", page.locator("#clinics").inner_text())
    shoot(page, "service-ru-eur")

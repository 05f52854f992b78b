"""axe-core on what a patient sees, on a phone, in English, Russian and Chinese: the home page, the catalogue,
a service page, sign-up, the slot page (booking), the checkout and the dashboard — zero serious or critical
violations.

Every violation (any impact) is written to test-artifacts/axe-<page>-<lang>.json and printed; the counts per
page and impact to test-artifacts/axe-summary.json. The checkout runs with localstripe and the Stripe.js test
double (as in test_booking_journey.py), so the card form axe sees is the one a patient fills in.
"""

from __future__ import annotations

import json
import re

from .conftest import ARTIFACTS, E2E, listing_url, pet_ct, service_url, shoot

pytestmark = E2E
LANGS = ("en", "ru", "zh-hans")
FAILING = ("serious", "critical")


def test_no_serious_or_critical_axe_violations(page, context, live_server, patient, stripe_test_double):
    """One test for all 21 pages: each e2e test costs a database restore."""
    from axe_playwright_python.sync_playwright import Axe
    from django.test import Client

    axe = Axe()
    ARTIFACTS.mkdir(exist_ok=True)
    summary: dict[str, dict[str, int]] = {}
    failing: list[str] = []

    def check(name: str, url: str, ready: str | None = None) -> None:
        response = page.goto(url)
        assert response.status == 200, f"{name} ({url}) answered {response.status}"
        if ready:
            page.locator(ready).wait_for(state="visible")
        if "/my/" not in url:  # public pages: a meta description (Lighthouse SEO) in the page's language
            assert len(page.locator('meta[name="description"]').get_attribute("content").strip()) > 20, name
        violations = axe.run(page).response["violations"]
        (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(
            [{"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
             for v in violations], indent=2, ensure_ascii=False), encoding="utf-8")
        counts = summary.setdefault(name, {"critical": 0, "serious": 0, "moderate": 0, "minor": 0})
        for v in violations:
            counts[v["impact"]] += len(v["nodes"])
            print(f"axe {name}: {v['impact']} {v['id']} ({len(v['nodes'])}): {v['help']}")
        bad = [f"{name} {v['impact']} {v['id']}: {v['help']} {[n['target'] for n in v['nodes']][:5]}"
               for v in violations if v["impact"] in FAILING]
        if bad:
            shoot(page, f"axe-{name}")
        failing.extend(bad)

    # the visitor's pages
    book_path = None
    for lang in LANGS:
        check(f"home-{lang}", f"/{lang}/")
        check(f"catalogue-{lang}", listing_url(lang))
        check(f"service-{lang}", service_url(pet_ct(), lang))
        book_path = page.locator("#clinics a.button[href*='/book/']").first.get_attribute("href")
        check(f"signup-{lang}", f"/{lang}/accounts/signup/")

    # the patient's pages, signed in: the slot page, the checkout of a held slot, the dashboard
    client = Client()
    client.force_login(patient)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    book_path = re.sub(r"^/[a-z-]+/", "/{lang}/", book_path)
    for lang in LANGS:
        check(f"slots-{lang}", book_path.format(lang=lang))
    slot = page.locator("form.slot-form button[type=submit]")
    for _ in range(4):  # the first week may have no free slot (notice period, weekend)
        if slot.count():
            break
        page.locator("a[rel=next]").click()
        page.wait_for_load_state()
    assert slot.count(), "no free PET-CT slot in four weeks"
    slot.first.click()
    page.wait_for_url(re.compile(r"/bookings/[A-Z0-9-]+/pay/$"))
    checkout_path = re.sub(r"^https?://[^/]+/[a-z-]+/", "/{lang}/", page.url)
    for lang in LANGS:
        # axe runs once the card form is there
        check(f"checkout-{lang}", checkout_path.format(lang=lang), ready="input[name=cardnumber]")
        check(f"dashboard-{lang}", f"/{lang}/my/", ready="main a[href*='/pay/']")  # with the held booking

    # and axe does see what it should: an unlabelled field and an image without text, added to the last page
    page.evaluate("""() => document.querySelector('main').insertAdjacentHTML('beforeend',
        '<input type="text" id="axe-probe"><img src="/static/favicon.svg" id="axe-probe-img">')""")
    found = {v["id"] for v in axe.run(page).response["violations"] if v["impact"] in FAILING}
    assert {"label", "image-alt"} <= found, f"axe did not report the planted violations: {found}"

    (ARTIFACTS / "axe-summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    assert len(summary) == 21
    assert not failing, failing

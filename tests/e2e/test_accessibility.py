"""axe-core on the home page, the catalogue listing and a service page: no critical violations.

Serious (and lesser) violations are written to test-artifacts/axe-<page>.json and printed, not failed.
"""

from __future__ import annotations

import json

from .conftest import ARTIFACTS, E2E, listing_url, pet_ct, service_url, shoot

pytestmark = E2E


def pages():
    return {
        "home-ru": lambda: "/ru/",
        "home-zh-hans": lambda: "/zh-hans/",
        "listing-ru": lambda: listing_url("ru"),
        "listing-zh-hans": lambda: listing_url("zh-hans"),
        "service-ru": lambda: service_url(pet_ct(), "ru"),
        "service-zh-hans": lambda: service_url(pet_ct(), "zh-hans"),
    }


def test_no_critical_axe_violations(page):
    """One test for all six pages: each e2e test costs a database restore."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    ARTIFACTS.mkdir(exist_ok=True)
    critical = []
    for name, url in pages().items():
        response = page.goto(url())
        assert response.status == 200, f"{name} answered {response.status}"
        violations = axe.run(page).response["violations"]
        (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(
            [{"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
             for v in violations], indent=2, ensure_ascii=False))
        for v in violations:
            print(f"axe {name}: {v['impact']} {v['id']} ({len(v['nodes'])}): {v['help']}")
        critical += [f"{name} {v['id']}: {v['help']} {[n['target'] for n in v['nodes']][:5]}"
                     for v in violations if v["impact"] == "critical"]
        shoot(page, f"axe-{name}")
    assert not critical, critical

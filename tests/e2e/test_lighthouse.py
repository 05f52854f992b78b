"""Lighthouse (npm ``lighthouse`` 12.2.3, installed into .tools/ by ``make lighthouse``/``make e2e``; 13 needs Node 22)
on the home page, the catalogue and a service page, as a phone (Lighthouse's default mobile form factor and
throttling), against `make serve` — the production shape (tests/e2e/serve.py). Every category must score at
least 95: performance, accessibility, best practices and SEO.

Reports: test-artifacts/lighthouse/<page>.json (Lighthouse's own), summary.json and summary.md.
A missing Lighthouse or chromium is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ARTIFACTS, CHROMIUM, LAUNCH_ARGS

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
LIGHTHOUSE = Path(os.environ.get("EMHANA_LIGHTHOUSE", ROOT / ".tools" / "node_modules" / ".bin" / "lighthouse"))
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
MINIMUM = 95
OUT = ARTIFACTS / "lighthouse"
LANG = "en"


@pytest.fixture(scope="module", autouse=True)
def _restore_after_module():
    """This module uses its own server and database (make serve), not the test database: nothing to restore."""
    yield


def lighthouse(url: str, name: str) -> dict:
    path = OUT / f"{name}.json"
    cmd = [str(LIGHTHOUSE), url, "--output=json", f"--output-path={path}", "--quiet",
           f"--chrome-flags={' '.join(LAUNCH_ARGS)}", f"--only-categories={','.join(CATEGORIES)}",
           "--max-wait-for-load=30000"]
    env = os.environ | {"CHROME_PATH": CHROMIUM}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)  # noqa: S603
    if done.returncode != 0 or not path.exists():
        pytest.fail(f"lighthouse failed on {url} ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(path.read_text(encoding="utf-8"))


def shortfalls(report: dict, category: str) -> list[str]:
    """The audits that cost points in a category, for the failure message."""
    audits = report["audits"]
    return [f"{ref['id']} ({audits[ref['id']].get('displayValue') or audits[ref['id']]['score']})"
            for ref in report["categories"][category]["auditRefs"]
            if ref["weight"] and audits[ref["id"]]["score"] is not None and audits[ref["id"]]["score"] < 1]


def test_home_catalogue_and_service_page_score_at_least_95_on_a_phone(make_serve):
    if not LIGHTHOUSE.exists():
        pytest.fail(f"Lighthouse not found at {LIGHTHOUSE}: `make lighthouse` installs it (npm, lighthouse@12.2.3)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: `make e2e` installs it")
    OUT.mkdir(parents=True, exist_ok=True)
    urls = make_serve.urls[LANG]
    summary, low = {}, []
    for page in ("home", "catalogue", "service"):
        url = make_serve.base + urls[page]
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 — loopback; warms the page cache
            assert response.status == 200
        started = time.monotonic()
        report = lighthouse(url, f"{LANG}-{page}")
        # a category Lighthouse could not score (score null) counts as 0
        scores = {c: round((report["categories"][c]["score"] or 0) * 100) for c in CATEGORIES}
        if report.get("runtimeError"):
            pytest.fail(f"lighthouse on {url}: {report['runtimeError']}")
        summary[f"{LANG}-{page}"] = {"url": urls[page], "seconds": round(time.monotonic() - started, 1),
                                     "lighthouse": report["lighthouseVersion"], "scores": scores,
                                     "costing_points": {c: shortfalls(report, c) for c in CATEGORIES if scores[c] < 100}}
        low += [f"{LANG}-{page} {c} {s}: {shortfalls(report, c)}" for c, s in scores.items() if s < MINIMUM]
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    lines = ["| page | " + " | ".join(CATEGORIES) + " |", "|---|" + "---|" * len(CATEGORIES)]
    lines += [f"| {name} ({row['url']}) | " + " | ".join(str(row["scores"][c]) for c in CATEGORIES) + " |"
              for name, row in summary.items()]
    (OUT / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    assert not low, f"Lighthouse below {MINIMUM}: {low}"

"""Browser tests in Debian's chromium (`make e2e`), against pytest-django's live server.

Data: tests/conftest.py loads the catalogue and demo clinics once per session. Live-server tests must be
transactional, and pytest-django flushes the database after each of them, so we snapshot the loaded
database once (tests/conftest.py's ``catalogue_snapshot``) and put it back before each e2e test that
finds it empty, and after each e2e module for whatever runs next: restoring takes seconds, loading the
catalogue again takes much longer.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.urls import clear_url_caches, set_urlconf
from django.utils import translation

CHROMIUM = os.environ.get("EMHANA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"width": 390, "height": 844}
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

# Every e2e test: transactional, so the live server thread sees what the test sees.
E2E = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _has_catalogue() -> bool:
    from catalog.models import ServicePage

    return ServicePage.objects.exists()


def _restore(snapshot: str) -> None:
    """Empty every table (without post_migrate re-creating content types) and load the snapshot."""
    from django.core.management import call_command
    from django.db import connection

    call_command("flush", interactive=False, verbosity=0, inhibit_post_migrate=True)
    connection.creation.deserialize_db_from_string(snapshot)
    if connection.vendor == "postgresql":  # flush restarted the sequences; move them past the restored ids
        from django.apps import apps
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), apps.get_models()):
                cursor.execute(statement)


@pytest.fixture(scope="module", autouse=True)
def _restore_after_module(catalogue_snapshot, django_db_blocker):
    """After a module's last test was flushed away, put the catalogue back for whatever runs next."""
    yield
    with django_db_blocker.unblock():
        if not _has_catalogue():
            _restore(catalogue_snapshot)


@pytest.fixture
def catalogue(live_server, catalogue_snapshot):
    """The catalogue and demo clinics, there for this test (after the previous test's flush)."""
    if not _has_catalogue():
        _restore(catalogue_snapshot)
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through Playwright. Missing chromium is a failure, never a skip."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: `apt-get install chromium fonts-noto-cjk` (make e2e does)")
    # Playwright's sync API keeps an event loop on this thread; the ORM calls in tests and fixtures are
    # still synchronous code, so tell Django not to refuse them (only while the browser is up).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
    except Exception as exc:  # noqa: BLE001 — any launch problem fails the run
        pw.stop()
        pytest.fail(f"chromium at {CHROMIUM} did not start: {exc}")
    yield chromium
    chromium.close()
    pw.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def context(browser, live_server, catalogue):
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True,
                              base_url=live_server.url)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def signed_in(context, live_server, patient):
    """The browser carries the patient's session (signed in without going through the login form)."""
    from django.test import Client

    client = Client()
    client.force_login(patient)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    return patient


@pytest.fixture
def page(context, request):
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shoot(pg, f"FAILED-{request.node.name}")
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def shoot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def first_int(text: str) -> int:
    match = re.search(r"\d[\d\s\u00a0]*", text)
    assert match, f"no number in {text!r}"
    return int(re.sub(r"\D", "", match.group()))


def service_url(service, lang: str) -> str:
    from catalog.models import ServicePage

    with translation.override(lang):
        return unquote(ServicePage.objects.get(pk=service.pk).url)


def service_title(service, lang: str) -> str:
    from catalog.models import ServicePage

    with translation.override(lang):
        return ServicePage.objects.get(pk=service.pk).title


def listing_url(lang: str) -> str:
    from catalog.models import SpecialtyIndexPage

    with translation.override(lang):
        return unquote(SpecialtyIndexPage.objects.live().first().url)


def gamma_knife():
    from catalog.models import ServicePage

    return ServicePage.objects.live().filter(slug_en__icontains="gamma").order_by("id").first()


def pet_ct():
    from catalog.models import ServicePage

    return ServicePage.objects.live().get(slug_en="pet-ct-fdg")


def _reload_urls():
    import portal.urls

    importlib.reload(portal.urls)
    clear_url_caches()
    set_urlconf(None)


@pytest.fixture
def stripe_test_double(settings):
    """localstripe plus settings.STRIPE_JS_TEST_DOUBLE; /stripe-test/ is routed only when that is true at
    import time of portal.urls, so the URLconf is reloaded with it on, and again afterwards."""
    from tests.localstripe_server import LocalStripe

    with LocalStripe() as ls:
        settings.STRIPE_API_BASE = ls.url
        settings.STRIPE_JS_TEST_DOUBLE = True
        _reload_urls()
        try:
            yield ls
        finally:
            settings.STRIPE_JS_TEST_DOUBLE = False
            settings.STRIPE_API_BASE = None
            _reload_urls()


@pytest.fixture(scope="session")
def make_serve():
    """`make serve` (production shape) on a free port, with its own PostgreSQL database and Redis DBs 12-13;
    one per session, shared by the serve journey and Lighthouse (tests/e2e/serve.py)."""
    from . import serve

    proc, server = serve.start(ARTIFACTS / "serve")
    yield server
    serve.stop(proc)

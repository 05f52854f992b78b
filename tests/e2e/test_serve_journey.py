"""A patient's journey on `make serve` — the production shape: gunicorn + Celery worker + Celery beat under honcho,
production settings, PostgreSQL + Redis (tests/e2e/serve.py) — in a phone-sized window, from the home page through
search, a service page, a slot and sign-up (code from the email) to the checkout, then the dashboard and a
cancellation whose email the Celery worker sends.

Where it stops: production refuses the Stripe test double and ``STRIPE_API_BASE``, so the checkout loads Stripe's
own Stripe.js, which this test (like every test) may not fetch from the internet: the browser aborts every request
that is not to the server on loopback, and the test checks that the only one asked for was js.stripe.com, on the
checkout page, and that the page then says the card form could not load. Paying is proven on `make run`
(test_make_run.py) and against the live server (test_booking_journey.py) with localstripe.
Screenshots: test-artifacts/serve/*.png.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from .conftest import ARTIFACTS, PHONE

pytestmark = [pytest.mark.e2e]
SHOTS = ARTIFACTS / "serve"
CODE = re.compile(r"\b([A-Z0-9]{4}-[A-Z0-9]{4})\b")


@pytest.fixture(scope="module", autouse=True)
def _restore_after_module():
    """This module uses its own server and database (make serve), not the test database: nothing to restore."""
    yield


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_for_log(serve, offset: int, pattern: str, timeout: float = 30, flags=re.S) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, serve.log(offset), flags)
        if match:
            return match
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} not in the make serve log:\n{serve.log(offset)[-3000:]}")


def arrive(page, pattern: str) -> None:
    """Wait for the page at ``pattern``; if it never comes, say where the browser is and what the server failed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_url(re.compile(pattern))
    except PlaywrightTimeout:
        raise AssertionError(f"never reached {pattern}: the browser is at {page.url}; "
                             f"server errors: {page.server_errors}") from None


@pytest.fixture
def phone(make_serve, browser, request):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  base_url=make_serve.base, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(20_000)
    blocked: list[str] = []

    def off_the_machine(route):
        blocked.append(route.request.url)
        route.abort()

    # nothing leaves the machine: every request not to the server on loopback is aborted (and recorded)
    context.route(re.compile(r"^(?!http://127\.0\.0\.1:\d+/)"), off_the_machine)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.blocked = blocked
    page.server_errors = []
    page.on("response", lambda r: r.status >= 500 and page.server_errors.append(f"{r.status} {r.url}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot(page, "FAILED-serve")
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not page.server_errors, f"server errors: {page.server_errors}"


def test_a_patient_goes_from_the_home_page_to_the_checkout_on_make_serve(make_serve, phone):
    serve, page, urls = make_serve, phone, make_serve.urls["en"]

    # production shape: production settings, page cache in Redis, a request id on every response
    response = page.goto(urls["home"])
    assert response.status == 200
    headers = response.headers
    assert headers.get("x-request-id")
    assert "script-src" in headers.get("content-security-policy", ""), "production sends a CSP"
    assert "unsafe-inline" not in headers["content-security-policy"].split("script-src", 1)[1].split(";")[0]
    assert page.locator("h1").inner_text().strip()
    assert page.locator('meta[name="description"]').get_attribute("content").strip()
    shot(page, "serve-1-home")

    # search from the home page
    page.fill("input[name=q]", "PET-CT")
    page.locator("form[role=search] button[type=submit]").first.click()
    arrive(page, r"\?q=PET-CT")
    assert page.url.split("?")[0].endswith(urls["catalogue"])
    result = page.locator("main a", has_text=urls["service_title"]).first
    assert result.is_visible()
    shot(page, "serve-2-catalogue-search")
    result.click()
    page.wait_for_load_state()
    assert page.url.endswith(urls["service"])
    assert urls["service_title"] in page.locator("h1").inner_text()
    shot(page, "serve-3-service")

    # a slot, as a visitor: the slot page is public, holding it needs an account
    page.locator("#clinics a.button[href*='/book/']").first.click()
    arrive(page, r"/en/my/book/\d+/")
    slot = page.locator("form.slot-form button[type=submit]")
    for _ in range(4):  # the first week may have no free slot (notice period, weekend)
        if slot.count():
            break
        page.locator("a[rel=next]").click()
        page.wait_for_load_state()
    assert slot.count(), "no free PET-CT slot in four weeks"
    shot(page, "serve-4-slots")
    chosen = slot.first.inner_text().split()[0]  # HH:MM, clinic time
    slot.first.click()

    # sign-up keeps the chosen time; the code comes by email (console backend: the server's log)
    arrive(page, r"/en/accounts/signup/")
    assert chosen in page.locator(".booking-intent").inner_text()
    assert page.locator('meta[name="description"]').get_attribute("content").strip()
    shot(page, "serve-5-signup")
    email = f"serve-{uuid.uuid4().hex[:8]}@example.com"
    offset = len(serve.log())
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", "a-long-password-2026")
    page.fill("input[name=password2]", "a-long-password-2026")
    page.locator("main form button[type=submit]").last.click()
    mail = wait_for_log(serve, offset, rf"To: {re.escape(email)}.*?{CODE.pattern}")
    page.fill("input[name=code]", mail.group(1))
    shot(page, "serve-6-code")
    page.locator("main form button[type=submit]").first.click()

    # back at the chosen time, signed in: hold it and go to the checkout
    arrive(page, r"/en/my/book/\d+/\?start=")
    assert chosen in page.locator("section.chosen").inner_text()
    page.locator("section.chosen button[type=submit]").click()
    arrive(page, r"/en/my/bookings/[A-Z0-9-]+/pay/$")
    reference = re.search(r"/bookings/([A-Z0-9-]+)/pay/", page.url).group(1)
    assert page.locator("h1").inner_text().strip() == "Pay the deposit"
    assert page.locator(".test-payments").count() == 0, "production takes real payments only"
    assert page.locator(".hold-timer").is_visible()
    # Stripe's own Stripe.js was asked for (and blocked here): the page says the card form could not load
    assert [u for u in page.blocked if "js.stripe.com" in u], f"checkout did not load Stripe.js: {page.blocked}"
    assert all("stripe.com" in u for u in page.blocked), f"requests off the machine: {page.blocked}"
    page.locator("#card-needs-js", has_text="could not load").wait_for()
    shot(page, "serve-7-checkout")

    # the dashboard lists the booking, awaiting payment
    page.goto("/en/my/")
    row = page.locator("main li, main article", has_text=reference).first
    assert row.is_visible() and row.locator("a", has_text="Pay the deposit").count() == 1
    shot(page, "serve-8-dashboard")

    # cancel it: the Celery worker (its own process) sends the email
    page.goto(f"/en/my/bookings/{reference}/")
    offset = len(serve.log())
    page.locator("a", has_text="Cancel booking").click()
    page.locator("main form input[type=checkbox]").check()
    page.locator("main form button[type=submit]").click()
    arrive(page, rf"/en/my/bookings/{reference}/$")
    assert "Cancelled" in page.locator("main").inner_text()
    shot(page, "serve-9-cancelled")
    wait_for_log(serve, offset, rf"worker\.1 +\| To: {re.escape(email)}", flags=0)
    assert "Traceback" not in serve.log(), serve.log()[-3000:]

"""The journey on the set-up a newcomer gets: `make run` (SQLite, eager Celery, localstripe started by honcho,
the Stripe.js stand-in), driven in Chinese on a phone from the home page to a paid, confirmed PET-CT slot,
the confirmation email (printed on the console) with the slot in the clinic's time, and the visa letter.

It starts `make run` itself on free ports with its own SQLite file, so it runs beside anything else.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from .conftest import PHONE, shoot

# django_db: the e2e fixtures restore the test database around each module; this module must have one too
pytestmark = [pytest.mark.e2e, pytest.mark.django_db]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    """`make run` as the README gives it, on a new SQLite file; yields (base url, path of its console log)."""
    tmp = tmp_path_factory.mktemp("make-run")
    port, stripe_port = free_port(), free_port()
    log_path = tmp / "console.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "CELERY_", "CACHE_", "REDIS_",
                                                                      "DJANGO_", "EMAIL_", "EMHANA_"))}
    env |= {"DATABASE_URL": f"sqlite:///{tmp / 'run.sqlite3'}", "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL_TEST", None)
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(["make", "run", f"PORT={port}", f"LOCALSTRIPE_PORT={stripe_port}"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"make run exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:  # noqa: S310 (loopback)
                    if r.status == 200 and _answers(stripe_port):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"make run did not serve within 300 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield base, log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _answers(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def phone(make_run, browser):
    base, _log = make_run
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, base_url=base,
                                  locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def console_since(log_path: Path, offset: int) -> str:
    return log_path.read_text(encoding="utf-8", errors="replace")[offset:]


def wait_for_console(log_path: Path, offset: int, pattern: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = console_since(log_path, offset)
        if re.search(pattern, text):
            return text
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} not printed on the console")


def test_a_chinese_patient_books_and_pays_a_pet_ct_slot_on_make_run(make_run, phone):
    base, log_path = make_run
    page = phone
    page.goto("/zh-hans/")
    assert "哈萨克斯坦" in page.locator("h1").inner_text()
    shoot(page, "make-run-zh-1-home")
    page.fill("input[name=q]", "PET-CT")
    page.locator("form[role=search] button, form.search button, main form button").first.click()
    page.wait_for_load_state()
    page.locator("main a", has_text="PET-CT").first.click()
    page.wait_for_load_state()
    shoot(page, "make-run-zh-2-service")
    page.locator("a.button[href*='/book/']").first.click()
    page.wait_for_url(re.compile(r"/zh-hans/my/book/\d+/"))
    slot = page.locator("form.slot-form button[type=submit]")
    for _ in range(4):
        if slot.count():
            break
        page.locator("a[rel=next]").click()
        page.wait_for_load_state()
    assert slot.count(), "no free PET-CT slot in four weeks"
    chosen = slot.first.inner_text().split()[0]  # HH:MM, clinic time
    slot.first.click()

    # why an account is needed, and the chosen time is kept through sign-up
    page.wait_for_url(re.compile(r"/zh-hans/accounts/signup/"))
    assert chosen in page.locator(".booking-intent").inner_text()
    shoot(page, "make-run-zh-3-signup")
    email = f"zh-{uuid.uuid4().hex[:8]}@example.com"
    offset = len(console_since(log_path, 0))
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", "a-long-password-2026")
    page.fill("input[name=password2]", "a-long-password-2026")
    page.locator("main form button[type=submit]").last.click()
    console = wait_for_console(log_path, offset, r"\b[A-Z0-9]{4}-[A-Z0-9]{4}\b")
    code = re.search(r"\b([A-Z0-9]{4}-[A-Z0-9]{4})\b", console[console.index(email):]).group(1)
    page.fill("input[name=code]", code)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/zh-hans/my/book/\d+/\?start="))
    page.locator("section.chosen button[type=submit]").click()

    page.wait_for_url(re.compile(r"/zh-hans/my/bookings/[A-Z0-9-]+/pay/$"))
    reference = re.search(r"/bookings/([A-Z0-9-]+)/pay/", page.url).group(1)
    assert page.locator(".test-payments").count() == 1  # test payments, no real money
    for name, autocomplete in (("cardnumber", "cc-number"), ("exp-date", "cc-exp"), ("cvc", "cc-csc")):
        field = page.locator(f"input[name={name}]")
        assert field.get_attribute("autocomplete") == autocomplete
    page.locator("input[name=cardnumber]").fill("4242 4242 4242 4242")
    shoot(page, "make-run-zh-4-checkout")
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, "the checkout (estimate) fits a phone"
    offset = len(console_since(log_path, 0))
    page.locator("#pay-button").click()
    page.wait_for_url(re.compile(rf"/zh-hans/my/bookings/{reference}/$"), timeout=30_000)
    assert "已确认" in page.locator("main").inner_text()
    shoot(page, "make-run-zh-5-confirmed")
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, "the booking page fits a phone"

    # the confirmation email, in Chinese, with the calendar file and the slot's clinic time
    console = wait_for_console(log_path, offset, r"text/calendar")
    mail = console[console.index(f"To: {email}"):] if f"To: {email}" in console else console
    assert "BEGIN:VCALENDAR" in mail or "text/calendar" in mail
    assert f"{chosen}–" in mail, "the email gives the slot in the clinic's time"

    # the visa letter needs the passport details first
    page.goto("/zh-hans/my/profile/")
    page.fill("input[name=given_names]", "WEI")
    page.fill("input[name=family_name]", "ZHANG")
    page.fill("input[name=date_of_birth]", "1980-03-04")
    page.select_option("select[name=citizenship]", "CN")
    page.fill("input[name=passport_number]", "E12345678")
    page.fill("input[name=passport_expiry]", "2031-01-01")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    response = page.request.get(f"{base}/zh-hans/my/bookings/{reference}/visa-letter.pdf")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    assert response.body()[:5] == b"%PDF-"

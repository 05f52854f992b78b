"""Before the trip, in Debian's chromium: a Kyrgyz-speaking patient (/ky/) books and pays an online consultation,
and both the patient and the clinic's staff see the room link only when the call is near; a clinician opens a
DICOM study from a ZIP in the desk's viewer (dwv, served by us) and the image is drawn on the canvas."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from tests.bookings.conftest import private_root  # noqa: F401
from tests.consult.conftest import study_zip, with_mfa

from .conftest import E2E, service_url, shoot

pytestmark = E2E
ROOM = re.compile(r"https://meet\.jit\.si/emhana-[A-Za-z0-9_-]{32}")
DESKTOP = {"width": 1280, "height": 900}


def _consultation():
    from catalog.models import Offering

    return (Offering.objects.filter(kind=Offering.CONSULTATION, is_active=True, resource_links__isnull=False)
            .select_related("clinic", "page").order_by("id").first())


def _staff_of(clinic):
    from bookings.models import ClinicMembership

    return with_mfa(ClinicMembership.objects.filter(clinic=clinic).select_related("user").first().user)


def _session_context(browser, live_server, user, **kwargs):
    from django.test import Client

    client = Client()
    client.force_login(user)
    ctx = browser.new_context(base_url=live_server.url, **kwargs)
    ctx.set_default_timeout(20_000)
    ctx.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    return ctx


def _errors(pg):
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def test_kyrgyz_patient_books_and_pays_a_consultation_and_both_sides_see_the_link_in_time(
        catalogue, browser, live_server, page, signed_in, stripe_test_double):
    from bookings.models import Allocation, Booking

    offering = _consultation()
    assert offering is not None, "demo data has online consultations"
    # the /ky/ service page offers it under "talk to a specialist before you travel" (read as a visitor)
    visitor_ctx = browser.new_context(base_url=live_server.url)
    visitor = visitor_ctx.new_page()
    visitor.goto(service_url(offering.page, "ky"))
    assert visitor.locator("html").get_attribute("lang").startswith("ky")
    href = visitor.locator(f"#before-you-travel a.button[href*='/book/{offering.pk}/']").get_attribute("href")
    visitor_ctx.close()
    page.goto(href)
    page.wait_for_url(re.compile(rf"/ky/.*/book/{offering.pk}/"))
    slot = page.locator("form.slot-form button[type=submit]")
    for _ in range(4):
        if slot.count():
            break
        page.locator("a[rel=next]").click()
        page.wait_for_load_state("domcontentloaded")
    assert slot.count(), "no free consultation slot in the next four weeks"
    slot.first.click()
    page.wait_for_url(re.compile(r"/bookings/[A-Z0-9-]+/pay/$"))
    reference = re.search(r"/bookings/([A-Z0-9-]+)/pay/", page.url).group(1)
    page.locator("input[name=cardnumber]").fill("4242 4242 4242 4242")
    for name, value in (("exp-date", "12 / 34"), ("cvc", "123")):
        field = page.locator(f"input[name={name}]")
        if field.count():
            field.fill(value)
    page.locator("#pay-button").click()
    page.wait_for_url(re.compile(rf"/bookings/{reference}/$"), timeout=30_000)
    booking = Booking.objects.get(reference=reference)
    assert booking.state == Booking.CONFIRMED and booking.language == "ky"

    # a day or more ahead: the call section is there, the room is not
    assert page.locator("#call").count() == 1
    assert not ROOM.search(page.content())

    staff = _staff_of(booking.clinic)
    desk_ctx = _session_context(browser, live_server, staff, viewport=DESKTOP)
    desk = desk_ctx.new_page()
    desk_errors = _errors(desk)
    desk.goto(f"/desk/booking/{booking.pk}/")
    assert desk.locator("#call").count() == 1 and not ROOM.search(desk.content())

    # the call is now 5 minutes away (inside the 10-minute lead): both sides see the same room
    appointment = booking.appointments.get()
    start = timezone.now() + timedelta(minutes=5)
    shift = start - appointment.start
    appointment.start, appointment.end = appointment.start + shift, appointment.end + shift
    appointment.save(update_fields=["start", "end"])
    Allocation.objects.filter(appointment=appointment).update(start=appointment.start, end=appointment.end)
    page.reload()
    link = page.locator("a[data-room-link]")
    patient_room = link.get_attribute("href")
    assert ROOM.fullmatch(patient_room)
    assert link.get_attribute("rel") == "noopener noreferrer"
    shoot(page, "consult-1-patient-link")
    desk.reload()
    assert desk.locator("a[data-room-link]").get_attribute("href") == patient_room
    shoot(desk, "consult-2-desk-link")
    desk_ctx.close()
    assert not desk_errors, desk_errors


def test_clinician_opens_a_zip_study_in_the_desk_viewer_and_sees_the_image(
        catalogue, browser, live_server, patient, private_root):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    from bookings.models import RecordAccess
    from bookings.patients.records import store_record
    from bookings.review import services as review
    from catalog.models import Offering

    offering = Offering.objects.filter(kind=Offering.SECOND_OPINION, is_active=True).select_related(
        "clinic").order_by("id").first()
    from bookings.patients import consent

    booking = review.request_treatment(patient, offering, note="Please look at my CT.")
    consent.give(booking, patient)
    record = store_record(patient, SimpleUploadedFile("study.zip", study_zip(count=3), "application/zip"),
                          booking=booking)
    staff = _staff_of(booking.clinic)
    ctx = _session_context(browser, live_server, staff, viewport=DESKTOP)
    pg = ctx.new_page()
    errors = _errors(pg)
    blocked: list[str] = []
    console: list[str] = []
    pg.on("console", lambda msg: console.append(msg.text))
    pg.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)
    pg.on("requestfailed", lambda req: console.append(f"failed {req.url}"))
    pg.on("pageerror", lambda exc: console.append(f"pageerror {exc}"))
    pg.goto(f"/desk/booking/{booking.pk}/")
    pg.locator(f"a[href='/desk/records/{record.pk}/viewer/']").click()
    try:
        pg.wait_for_selector("#dicom-viewer[data-state=loaded]", timeout=30_000)
    finally:
        shoot(pg, "consult-3-viewer")
    canvas_colours = pg.evaluate("""() => {
        const canvases = [...document.querySelectorAll('#layerGroup0 canvas')].filter(c => c.width && c.height);
        return canvases.map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4 * 7) seen.add(`${d[i]},${d[i+1]},${d[i+2]},${d[i+3]}`);
            return seen.size;
        });
    }""")
    assert max(canvas_colours) > 10, f"the image is not drawn: colours per canvas {canvas_colours}"
    # scroll to the next image of the series, change the tool: still drawn, no errors
    pg.locator("[data-action=next]").click()
    pg.locator("[data-tool=WindowLevel]").click()
    assert pg.locator("[data-tool=WindowLevel]").get_attribute("aria-pressed") == "true"
    # every image came through the logged member view; nothing was served as a download
    assert RecordAccess.objects.filter(record=record, user=staff, action="view").count() >= 3
    ctx.close()
    assert not errors, (errors, console)
    assert not blocked, blocked

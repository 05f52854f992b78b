"""A signed-in patient books a PET-CT slot on a phone and pays the deposit with 4242 4242 4242 4242,
through our Stripe.js test double and localstripe (in-process, 127.0.0.1; nothing leaves the machine)."""

from __future__ import annotations

import re

from .conftest import E2E, pet_ct, service_url, shoot

pytestmark = E2E


def test_patient_books_pet_ct_and_pays_by_card(catalogue, page, signed_in, stripe_test_double):
    from bookings.models import Booking

    patient = signed_in

    page.goto(service_url(pet_ct(), "ru"))
    page.locator("#clinics a.button[href*='/book/']").first.click()
    page.wait_for_url(re.compile(r"/book/\d+/"))
    slot = page.locator("form.slot-form button[type=submit]")
    for _ in range(4):  # the first week may have no free slot (notice period, weekend)
        if slot.count():
            break
        page.locator("a[rel=next]").click()
        page.wait_for_load_state("domcontentloaded")
    assert slot.count(), "no free PET-CT slot in the next four weeks"
    shoot(page, "journey-1-slots")
    slot.first.click()

    page.wait_for_url(re.compile(r"/bookings/[A-Z0-9-]+/pay/$"))
    reference = re.search(r"/bookings/([A-Z0-9-]+)/pay/", page.url).group(1)
    booking = Booking.objects.get(reference=reference)
    assert booking.user_id == patient.pk and booking.state == Booking.AWAITING_PAYMENT
    card = page.locator("input[name=cardnumber]")
    card.wait_for(state="visible")
    card.fill("4242 4242 4242 4242")
    for name, value in (("exp-date", "12 / 34"), ("cvc", "123")):
        field = page.locator(f"input[name={name}]")
        if field.count():
            field.fill(value)
    shoot(page, "journey-2-checkout")
    page.locator("#pay-button").click()

    page.wait_for_url(re.compile(rf"/bookings/{reference}/$"), timeout=30_000)
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert booking.payments.filter(state="succeeded").exists()
    assert reference in page.locator("main").inner_text()
    shoot(page, "journey-3-confirmed")

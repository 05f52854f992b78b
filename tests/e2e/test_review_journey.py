"""A Kazakh-speaking patient on a phone: a Gamma Knife request with the questionnaire → the clinic reviews
and quotes → the patient picks dates → the hold runs out before paying → new dates inside the quote's window
→ paid with 4242 → confirmed. The clinic's side is the desk's service calls; the patient's is the browser."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from .conftest import E2E, gamma_knife, service_url, shoot

pytestmark = E2E


def pick_first_slot(page):
    slot = page.locator("form.slot-form button[type=submit]")
    slot.first.wait_for(state="visible")
    slot.first.click()


def pay_4242(page):
    page.locator("input[name=cardnumber]").wait_for(state="visible")
    page.locator("input[name=cardnumber]").fill("4242 4242 4242 4242")
    page.locator("#pay-button").click()


def test_kazakh_request_review_quote_expired_hold_new_dates_paid(catalogue, page, signed_in, stripe_test_double):
    from bookings.engine import slots
    from bookings.models import Booking
    from bookings.review import services as review

    page.goto(service_url(gamma_knife(), "kk"))
    page.locator("a.button[href*='/request/']").first.click()
    page.wait_for_url(re.compile(r"/kk/my/request/\d+/"))
    page.fill("textarea[name=diagnosis]", "Вестибулярлық шваннома, 2,1 см, МРТ 2026 ж. наурыз")
    page.fill("textarea[name=prior_treatment]", "жоқ")
    page.fill("textarea[name=current_state]", "Сол құлақта есту нашарлаған, өзі жүреді")
    page.check("input[name=consent]")
    shoot(page, "review-kk-1-request")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url(re.compile(r"/kk/my/bookings/[A-Z0-9-]+/$"))
    reference = re.search(r"/bookings/([A-Z0-9-]+)/", page.url).group(1)
    booking = Booking.objects.get(reference=reference)
    assert booking.user == signed_in and booking.state == Booking.REQUESTED
    assert booking.questionnaire["prior_treatment"] == "жоқ"

    # the clinic reviews and quotes (the desk's own tests drive these pages)
    review.start_review(booking, None)
    options = slots.offering_slots(booking.offering, timezone.localdate(),
                                      timezone.localdate() + timedelta(days=60))
    first_day = options[0].start.astimezone(booking.clinic.tz).date()
    review.send_quote(booking, None, price=booking.offering.price, deposit=booking.offering.deposit,
                        included="", treatment_plan="", window_start=first_day,
                        window_end=first_day + timedelta(days=21), valid_until=timezone.now() + timedelta(days=7))

    page.reload()
    page.locator(f"a[href$='/bookings/{reference}/dates/']").first.click()
    pick_first_slot(page)
    page.wait_for_url(re.compile(rf"/kk/my/bookings/{reference}/pay/$"))
    shoot(page, "review-kk-2-checkout")

    # the patient is called away; the hold runs out (no sweep has run)
    Booking.objects.filter(pk=booking.pk).update(payment_due_at=timezone.now() - timedelta(seconds=1))
    page.reload()
    page.wait_for_url(re.compile(rf"/kk/my/bookings/{reference}/dates/$"))  # new dates, not a loop
    shoot(page, "review-kk-3-new-dates")
    booking.refresh_from_db()
    assert booking.state == Booking.QUOTED
    pick_first_slot(page)
    page.wait_for_url(re.compile(rf"/kk/my/bookings/{reference}/pay/$"))
    pay_4242(page)
    page.wait_for_url(re.compile(rf"/kk/my/bookings/{reference}/$"), timeout=30_000)
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    assert booking.payments.filter(state="succeeded").count() == 1
    shoot(page, "review-kk-4-confirmed")

"""The clinic desk: who may see what, calendars that change the bookable slots, the review flow, attendance."""

from datetime import date, datetime, time, timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation

from bookings.engine import calendar as calendar_service
from bookings.engine import slots
from bookings.lifecycle import reasons
from bookings.models import (
    Allocation,
    Appointment,
    AvailabilityException,
    Booking,
    ClinicMembership,
    Message,
    OfferingResource,
    Quote,
    Resource,
    WeeklyHours,
)
from catalog.models import Offering

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------------- helpers


def with_mfa(user):
    if not Authenticator.objects.filter(user=user).exists():
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})
    return user


def gk_resource() -> Resource:
    return (Resource.objects.filter(name__startswith="Gamma Knife").select_related("clinic").first()
            or Resource.objects.select_related("clinic").order_by("id").first())


def offering_for(resource: Resource) -> Offering:
    link = OfferingResource.objects.filter(resource=resource).select_related("offering__clinic").first()
    return link.offering


def staff_of(clinic):
    membership = ClinicMembership.objects.filter(clinic=clinic).select_related("user").first()
    return with_mfa(membership.user)


def other_clinic_resource(clinic) -> Resource:
    member_clinics = ClinicMembership.objects.exclude(clinic=clinic).values("clinic_id")
    return Resource.objects.filter(clinic_id__in=member_clinics).select_related("clinic").first()


def future_weekday(days_ahead=40, weekday=0) -> date:
    day = timezone.now().date() + timedelta(days=days_ahead)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def local(day, hour, tz, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def make_booking(offering, user, state=Booking.CONFIRMED, start=None, minutes=None, status=Appointment.BOOKED):
    booking = Booking.objects.create(user=user, offering=offering, clinic=offering.clinic, state=state,
                                     price=offering.price, deposit=offering.deposit,
                                     service_title=offering.page.title)
    from bookings.patients import consent

    consent.give(booking, user)  # as the request form asks: the clinic may see the patient's data (issue 10)
    if start is not None:
        end = start + timedelta(minutes=minutes or offering.session_minutes)
        appointment = Appointment.objects.create(booking=booking, offering=offering, start=start, end=end,
                                                 status=status)
        for link in OfferingResource.objects.filter(offering=offering):
            Allocation.objects.create(appointment=appointment, resource=link.resource, start=start, end=end)
    return booking


def hours_post(rows, before=0, after=30, **extra):
    data = {"hours-TOTAL_FORMS": str(len(rows)), "hours-INITIAL_FORMS": "0", "hours-MIN_NUM_FORMS": "0",
            "hours-MAX_NUM_FORMS": "1000", "buffers-buffer_before_minutes": str(before),
            "buffers-buffer_after_minutes": str(after)}
    for i, (weekday, start, end) in enumerate(rows):
        data[f"hours-{i}-weekday"] = str(weekday)
        data[f"hours-{i}-start"] = start
        data[f"hours-{i}-end"] = end
    data.update(extra)
    return data


def slot_days(offering, first, last):
    tz = offering.clinic.tz
    return {o.start.astimezone(tz).date() for o in slots.offering_slots(offering, first, last)}


@pytest.fixture
def gk():
    return gk_resource()


@pytest.fixture
def staff(gk):
    return staff_of(gk.clinic)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


# --------------------------------------------------------------------------------- access


def desk_urls(resource, booking, appointment, exception):
    clinic_id = resource.clinic_id
    gets = [
        reverse("desk:day", args=[clinic_id]), reverse("desk:queue", args=[clinic_id]),
        reverse("desk:week", args=[resource.pk]), reverse("desk:hours", args=[resource.pk]),
        reverse("desk:exceptions", args=[resource.pk]), reverse("desk:booking", args=[booking.pk]),
    ]
    posts = [
        reverse("desk:hours", args=[resource.pk]), reverse("desk:exceptions", args=[resource.pk]),
        reverse("desk:exception_delete", args=[resource.pk, exception.pk]),
        reverse("desk:start_review", args=[booking.pk]), reverse("desk:quote", args=[booking.pk]),
        reverse("desk:decline", args=[booking.pk]), reverse("desk:cancel", args=[booking.pk]),
        reverse("desk:message", args=[booking.pk]), reverse("desk:attendance", args=[appointment.pk]),
    ]
    return gets, posts


@pytest.fixture
def foreign(patient):
    """Another clinic's resource, a booking there with a session and an exception."""
    resource = other_clinic_resource(gk_resource().clinic)
    offering = offering_for(resource)
    booking = make_booking(offering, patient, Booking.REQUESTED,
                           start=local(future_weekday(), 10, resource.clinic.tz))
    exception = AvailabilityException.objects.create(resource=resource, start=timezone.now() + timedelta(days=50),
                                                     end=timezone.now() + timedelta(days=51))
    return resource, booking, booking.appointments.get(), exception


def test_staff_get_404_for_another_clinic(staff_client, foreign):
    resource, booking, appointment, exception = foreign
    gets, posts = desk_urls(resource, booking, appointment, exception)
    hours_before = list(resource.weekly_hours.values_list("weekday", "start", "end"))
    for url in gets:
        assert staff_client.get(url).status_code == 404, url
    payload = {"attended": "1", "decline-reason": "no", "message-body": "hi", "cancel-confirm": "on",
               "kind": "closed", "start": "2030-01-01T00:00", "end": "2030-01-02T00:00"}
    for url in posts:
        assert staff_client.post(url, payload).status_code == 404, url
    booking.refresh_from_db()
    assert booking.state == Booking.REQUESTED
    assert not Message.objects.filter(booking=booking).exists()
    assert AvailabilityException.objects.filter(pk=exception.pk).exists()
    assert list(resource.weekly_hours.values_list("weekday", "start", "end")) == hours_before


def test_staff_see_their_own_clinic(staff_client, gk, foreign):
    home = staff_client.get(reverse("desk:home"))
    assert home.status_code == 200
    assert gk.clinic.title in home.content.decode()
    assert foreign[0].clinic.title not in home.content.decode()
    for url in (reverse("desk:day", args=[gk.clinic_id]), reverse("desk:queue", args=[gk.clinic_id]),
                reverse("desk:week", args=[gk.pk]), reverse("desk:hours", args=[gk.pk]),
                reverse("desk:exceptions", args=[gk.pk])):
        assert staff_client.get(url).status_code == 200, url


def test_anonymous_is_sent_to_login(client, foreign):
    gets, posts = desk_urls(*foreign)
    for url in [reverse("desk:home"), *gets, *posts]:
        response = client.post(url) if url in posts and url not in gets else client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/en/accounts/login/?next="), url


def test_patient_is_forbidden(patient_client, patient, foreign):
    with_mfa(patient)
    gets, posts = desk_urls(*foreign)
    for url in [reverse("desk:home"), *gets]:
        assert patient_client.get(url).status_code == 403, url
    for url in posts:
        assert patient_client.post(url, {"attended": "1"}).status_code == 403, url
    assert foreign[1].appointments.get().status == Appointment.BOOKED


@override_settings(EMHANA_REQUIRE_STAFF_MFA=False)
def test_patient_without_mfa_is_forbidden_too(patient_client):
    assert patient_client.get(reverse("desk:home")).status_code == 403


def test_staff_without_mfa_are_sent_to_set_it_up(client, gk):
    user = ClinicMembership.objects.filter(clinic=gk.clinic).first().user
    Authenticator.objects.filter(user=user).delete()
    client.force_login(user)
    response = client.get(reverse("desk:home"))
    assert response.status_code == 302
    assert "/desk/" not in response["Location"]


# --------------------------------------------------------------------------------- calendars


def test_hours_and_exceptions_change_the_bookable_slots(staff_client, gk):
    offering = offering_for(gk)
    resources = [link.resource for link in OfferingResource.objects.filter(offering=offering)]
    monday = future_weekday(days_ahead=45)
    saturday, sunday = monday + timedelta(days=5), monday + timedelta(days=6)
    before = slot_days(offering, monday, sunday)
    assert monday in before and saturday not in before

    # Saturday mornings on every resource the offering needs
    rows = [(d, "09:00", "17:00") for d in range(5)] + [(5, "09:00", "14:00")]
    for resource in resources:
        response = staff_client.post(reverse("desk:hours", args=[resource.pk]), hours_post(rows))
        assert response.status_code == 302, response.content.decode()[:2000]
    assert gk.weekly_hours.filter(weekday=5).count() == 1
    assert saturday in slot_days(offering, saturday, saturday)

    # a maintenance day on the Gamma Knife unit: no slots that day
    response = staff_client.post(reverse("desk:exceptions", args=[gk.pk]), {
        "kind": "closed", "start": f"{monday}T00:00", "end": f"{monday + timedelta(days=1)}T00:00",
        "reason": "Maintenance"})
    assert response.status_code == 302
    exception = gk.exceptions.get(reason="Maintenance")
    assert exception.start == local(monday, 0, gk.clinic.tz)  # read in the clinic's zone, stored in UTC
    assert slot_days(offering, monday, monday) == set()
    assert monday + timedelta(days=1) in slot_days(offering, monday, monday + timedelta(days=1))

    # extra hours on Sunday on every resource: slots appear
    assert slot_days(offering, sunday, sunday) == set()
    for resource in resources:
        response = staff_client.post(reverse("desk:exceptions", args=[resource.pk]), {
            "kind": "extra", "start": f"{sunday}T10:00", "end": f"{sunday}T15:00", "reason": "Extra list"})
        assert response.status_code == 302
    sunday_slots = slots.offering_slots(offering, sunday, sunday)
    assert sunday_slots
    assert min(o.start for o in sunday_slots) == local(sunday, 10, gk.clinic.tz)

    # removing the maintenance day brings the Monday back
    response = staff_client.post(reverse("desk:exception_delete", args=[gk.pk, exception.pk]))
    assert response.status_code == 302
    assert monday in slot_days(offering, monday, monday)

    week = staff_client.get(reverse("desk:week", args=[gk.pk]) + f"?start={sunday}")
    assert week.status_code == 200
    assert "Extra list" in week.content.decode()
    assert "10:00–15:00" in week.content.decode()


def test_hours_form_errors_are_shown_and_nothing_saved(staff_client, gk):
    before = list(gk.weekly_hours.values_list("weekday", "start", "end"))
    bad = staff_client.post(reverse("desk:hours", args=[gk.pk]), hours_post([(0, "12:00", "09:00")]))
    assert bad.status_code == 200
    assert "closing time must be after" in bad.content.decode()
    overlap = staff_client.post(reverse("desk:hours", args=[gk.pk]),
                                hours_post([(0, "09:00", "13:00"), (0, "12:00", "17:00")]))
    assert overlap.status_code == 200
    assert "overlap" in overlap.content.decode()
    assert list(gk.weekly_hours.values_list("weekday", "start", "end")) == before
    bad_date = staff_client.get(reverse("desk:week", args=[gk.pk]) + "?start=not-a-date")
    assert bad_date.status_code == 200


def test_changing_hours_that_strand_a_booking_needs_confirmation(staff_client, gk, patient):
    offering = offering_for(gk)
    tz = gk.clinic.tz
    monday = future_weekday(days_ahead=50)
    booking = make_booking(offering, patient, Booking.CONFIRMED, start=local(monday, 10, tz))
    appointment = booking.appointments.get()
    rows = [(d, "13:00", "17:00") for d in range(5)]
    url = reverse("desk:hours", args=[gk.pk])

    response = staff_client.post(url, hours_post(rows))
    assert response.status_code == 200
    page = response.content.decode()
    assert booking.reference in page and patient.email in page
    assert 'name="confirm_stranded"' in page
    assert not gk.weekly_hours.filter(start=time(13)).exists()  # not saved

    time_rows = [(d, time(13), time(17)) for d in range(5)]
    assert calendar_service.stranded_appointments(gk, new_weekly_rows=time_rows) == [appointment]
    assert calendar_service.stranded_appointments(gk, new_weekly_rows=[(0, time(9), time(17))]) == []

    response = staff_client.post(url, hours_post(rows, confirm_stranded="1", acknowledged=str(appointment.pk)))
    assert response.status_code == 302
    assert set(gk.weekly_hours.values_list("start", flat=True)) == {time(13)}
    appointment.refresh_from_db()
    booking.refresh_from_db()
    assert appointment.status == Appointment.BOOKED and booking.state == Booking.CONFIRMED  # never dropped


def test_a_closure_over_a_booking_needs_confirmation(staff_client, gk, patient):
    offering = offering_for(gk)
    tz = gk.clinic.tz
    tuesday = future_weekday(days_ahead=50, weekday=1)
    booking = make_booking(offering, patient, Booking.CONFIRMED, start=local(tuesday, 11, tz))
    appointment = booking.appointments.get()
    data = {"kind": "closed", "start": f"{tuesday}T00:00", "end": f"{tuesday + timedelta(days=1)}T00:00",
            "reason": "Power works"}
    url = reverse("desk:exceptions", args=[gk.pk])
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert booking.reference in response.content.decode()
    assert not gk.exceptions.filter(reason="Power works").exists()
    response = staff_client.post(url, {**data, "confirm_stranded": "1", "acknowledged": str(appointment.pk)})
    assert response.status_code == 302
    assert gk.exceptions.filter(reason="Power works").exists()
    appointment.refresh_from_db()
    assert appointment.status == Appointment.BOOKED

    # extra hours are never a problem
    response = staff_client.post(url, {"kind": "extra", "start": f"{tuesday}T18:00", "end": f"{tuesday}T20:00"})
    assert response.status_code == 302


def test_week_shows_bookings_and_holds(staff_client, gk, patient):
    offering = offering_for(gk)
    tz = gk.clinic.tz
    monday = future_weekday(days_ahead=60)
    booked = make_booking(offering, patient, Booking.CONFIRMED, start=local(monday, 9, tz))
    held = make_booking(offering, patient, Booking.AWAITING_PAYMENT, start=local(monday, 14, tz),
                        status=Appointment.HELD)
    Allocation.objects.filter(appointment__booking=held).update(expires_at=timezone.now() + timedelta(minutes=10))
    response = staff_client.get(reverse("desk:week", args=[gk.pk]) + f"?start={monday + timedelta(days=2)}")
    page = response.content.decode()
    assert response.status_code == 200
    assert booked.reference in page and held.reference in page
    assert "09:00" in page and "14:00" in page and "Held" in page


# --------------------------------------------------------------------------------- review flow


def quote_post(**overrides):
    today = timezone.now().date()
    data = {"quote-price": "3500000.50", "quote-deposit": "700000", "quote-included": "Planning\nFollow-up",
            "quote-treatment_plan": "One session of radiosurgery.",
            "quote-window_start": str(today + timedelta(days=20)),
            "quote-window_end": str(today + timedelta(days=40)),
            "quote-valid_until": str(today + timedelta(days=10))}
    data.update(overrides)
    return data


def test_review_then_quote(staff_client, gk, patient):
    offering = offering_for(gk)
    booking = make_booking(offering, patient, Booking.REQUESTED)
    booking.request_note = "MRI attached"
    booking.questionnaire = {"diagnosis": "AVM", "previous_treatment": False}
    booking.save()
    from bookings.patients import consent

    consent.give(booking, patient)  # the patient agreed to share the request with the clinic (issue 10)

    queue = staff_client.get(reverse("desk:queue", args=[gk.clinic_id]))
    assert booking.reference in queue.content.decode()
    detail = staff_client.get(reverse("desk:booking", args=[booking.pk]))
    assert "MRI attached" in detail.content.decode() and "AVM" in detail.content.decode()

    assert staff_client.post(reverse("desk:start_review", args=[booking.pk])).status_code == 302
    booking.refresh_from_db()
    assert booking.state == Booking.UNDER_REVIEW

    # deposit above price: refused by the form, nothing saved
    bad = staff_client.post(reverse("desk:quote", args=[booking.pk]), quote_post(**{"quote-deposit": "9000000"}))
    assert bad.status_code == 200 and not Quote.objects.filter(booking=booking).exists()
    # a past "valid until" is refused by the service; the typed input stays in the form
    past = staff_client.post(reverse("desk:quote", args=[booking.pk]),
                             quote_post(**{"quote-valid_until": str(timezone.now().date() - timedelta(days=2)),
                                           "quote-treatment_plan": "Keep this text"}))
    assert past.status_code == 200
    assert "valid until a future date" in past.content.decode()
    assert "Keep this text" in past.content.decode()
    assert not Quote.objects.filter(booking=booking).exists()

    response = staff_client.post(reverse("desk:quote", args=[booking.pk]), quote_post())
    assert response.status_code == 302
    quote = Quote.objects.get(booking=booking)
    assert quote.price == 350000050 and quote.deposit == 70000000
    assert quote.treatment_plan == "One session of radiosurgery." and quote.version == 1
    assert quote.valid_until.astimezone(gk.clinic.tz).time() == time(23, 59, 59)
    booking.refresh_from_db()
    assert booking.state == Booking.QUOTED
    assert booking.events.filter(to_state=Booking.QUOTED, actor=response.wsgi_request.user).exists()


def test_decline_needs_a_reason(staff_client, gk, patient):
    booking = make_booking(offering_for(gk), patient, Booking.REQUESTED)
    url = reverse("desk:decline", args=[booking.pk])
    empty = staff_client.post(url, {"decline-reason": "   "})
    assert empty.status_code == 200
    assert "Please give the patient a reason." in empty.content.decode()
    booking.refresh_from_db()
    assert booking.state == Booking.REQUESTED

    assert staff_client.post(url, {"decline-reason": "Lesion too large for radiosurgery."}).status_code == 302
    booking.refresh_from_db()
    assert booking.state == Booking.DECLINED
    assert booking.decline_reason == "Lesion too large for radiosurgery."
    # a declined booking cannot be declined again: the service's message, no 500
    again = staff_client.post(url, {"decline-reason": "again"})
    assert again.status_code == 200


def test_message_and_cancel_as_clinic(staff_client, gk, patient, mailoutbox):
    booking = make_booking(offering_for(gk), patient, Booking.CONFIRMED,
                           start=local(future_weekday(days_ahead=70), 10, gk.clinic.tz))
    response = staff_client.post(reverse("desk:message", args=[booking.pk]), {"message-body": "Please bring MRI."})
    assert response.status_code == 302
    message = Message.objects.get(booking=booking)
    assert message.from_clinic and message.author == response.wsgi_request.user
    assert staff_client.post(reverse("desk:message", args=[booking.pk]), {"message-body": ""}).status_code == 200

    no_tick = staff_client.post(reverse("desk:cancel", args=[booking.pk]), {})
    assert no_tick.status_code == 200
    booking.refresh_from_db()
    assert booking.state == Booking.CONFIRMED
    form = {"cancel-reason": reasons.CLINIC_CANCELLED, "cancel-confirm": "on"}  # what the page's form sends
    assert staff_client.post(reverse("desk:cancel", args=[booking.pk]), form).status_code == 302
    booking.refresh_from_db()
    assert booking.state == Booking.CANCELLED and booking.cancel_reason == reasons.CLINIC_CANCELLED
    assert not booking.appointments.filter(status=Appointment.BOOKED).exists()



def test_clinician_finds_the_patient_unfit_and_the_cancellation_says_so(staff_client, gk, patient):
    booking = make_booking(offering_for(gk), patient, Booking.CONFIRMED,
                           start=local(future_weekday(days_ahead=72), 10, gk.clinic.tz))
    response = staff_client.post(reverse("desk:cancel", args=[booking.pk]),
                                 {"cancel-reason": "unfit", "cancel-confirm": "on"})
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.state == Booking.CANCELLED and booking.cancel_reason == reasons.UNFIT_ON_ARRIVAL
    bogus = make_booking(offering_for(gk), patient, Booking.CONFIRMED,
                         start=local(future_weekday(days_ahead=73), 10, gk.clinic.tz))
    refused = staff_client.post(reverse("desk:cancel", args=[bogus.pk]),
                                {"cancel-reason": "patient", "cancel-confirm": "on"})
    assert refused.status_code == 200  # only clinic reasons here
    bogus.refresh_from_db()
    assert bogus.state == Booking.CONFIRMED


# --------------------------------------------------------------------------------- day list


def test_day_list_and_attendance(staff_client, gk, patient):
    offering = offering_for(gk)
    tz = gk.clinic.tz
    today = timezone.now().astimezone(tz).date()
    first = make_booking(offering, patient, Booking.CONFIRMED, start=local(today, 9, tz))
    second = make_booking(offering, patient, Booking.CONFIRMED, start=local(today, 13, tz))
    make_booking(offering, patient, Booking.CANCELLED, start=local(today, 16, tz), status=Appointment.CANCELLED)
    url = reverse("desk:day", args=[gk.clinic_id]) + f"?date={today}"
    page = staff_client.get(url).content.decode()
    assert first.reference in page and second.reference in page and patient.email in page
    assert "09:00" in page and "13:00" in page

    a1, a2 = first.appointments.get(), second.appointments.get()
    assert staff_client.post(reverse("desk:attendance", args=[a1.pk]), {"attended": "1"}).status_code == 302
    assert staff_client.post(reverse("desk:attendance", args=[a2.pk]), {"attended": "0"}).status_code == 302
    a1.refresh_from_db()
    a2.refresh_from_db()
    first.refresh_from_db()
    assert a1.status == Appointment.ATTENDED and a2.status == Appointment.NO_SHOW
    assert first.state == Booking.COMPLETED
    assert first.reference in staff_client.get(url).content.decode()  # completed bookings stay on the list

    bad = staff_client.post(reverse("desk:attendance", args=[a1.pk]), {"attended": "maybe"})
    assert bad.status_code == 302
    assert staff_client.get(reverse("desk:day", args=[gk.clinic_id]) + "?date=2026-13-45").status_code == 200


def test_calendar_service_directly(gk, staff):
    with pytest.raises(calendar_service.CalendarError):
        calendar_service.set_weekly_hours(gk, [(0, time(10), time(9))], staff)
    calendar_service.set_weekly_hours(gk, [(0, time(8), time(12)), (0, time(13), time(18))], staff, buffer_after=15)
    assert list(WeeklyHours.objects.filter(resource=gk).values_list("start", "end")) == [
        (time(8), time(12)), (time(13), time(18))]
    gk.refresh_from_db()
    assert gk.buffer_after_minutes == 15
    start = timezone.now() + timedelta(days=90)
    with pytest.raises(calendar_service.CalendarError):
        calendar_service.add_exception(gk, "closed", start, start, "", staff)
    exception = calendar_service.add_exception(gk, "extra", start, start + timedelta(hours=2), "x", staff)
    calendar_service.remove_exception(gk, exception, staff)
    with pytest.raises(calendar_service.CalendarError):
        calendar_service.remove_exception(gk, exception.pk, staff)


def test_removing_extra_hours_that_carry_a_booking_needs_confirmation(staff_client, gk, patient):
    offering = offering_for(gk)
    tz = gk.clinic.tz
    saturday = future_weekday(days_ahead=55, weekday=5)
    exception = calendar_service.add_exception(gk, AvailabilityException.EXTRA, local(saturday, 9, tz),
                                               local(saturday, 13, tz), "Saturday list", None)
    booking = make_booking(offering, patient, Booking.CONFIRMED, start=local(saturday, 10, tz))
    appointment = booking.appointments.get()
    url = reverse("desk:exception_delete", args=[gk.pk, exception.pk])
    response = staff_client.post(url)
    assert response.status_code == 200
    assert booking.reference in response.content.decode()
    assert AvailabilityException.objects.filter(pk=exception.pk).exists()
    response = staff_client.post(url, {"confirm_stranded": "1", "acknowledged": str(appointment.pk)})
    assert response.status_code == 302
    assert not AvailabilityException.objects.filter(pk=exception.pk).exists()
    appointment.refresh_from_db()
    assert appointment.status == Appointment.BOOKED


def test_booking_detail_links_records_and_shows_the_thread(staff_client, gk, patient):
    from bookings.models import MedicalRecord

    booking = make_booking(offering_for(gk), patient, Booking.UNDER_REVIEW)
    record = MedicalRecord.objects.create(owner=patient, booking=booking, file="records/x.pdf",
                                          original_name="mri-report.pdf", content_type="application/pdf",
                                          size=1234, sha256="0" * 64)
    Message.objects.create(booking=booking, author=patient, body="When can I come?")
    page = staff_client.get(reverse("desk:booking", args=[booking.pk])).content.decode()
    assert reverse("record_download", args=[record.id]) in page and "mri-report.pdf" in page
    assert "When can I come?" in page


def test_week_and_day_queries_do_not_grow_with_bookings(staff_client, gk, patient, django_assert_max_num_queries):
    offering = offering_for(gk)
    tz = gk.clinic.tz
    monday = future_weekday(days_ahead=80)
    for day in range(5):
        for hour in (9, 12, 14):
            make_booking(offering, patient, Booking.CONFIRMED, start=local(monday + timedelta(days=day), hour, tz))
    with django_assert_max_num_queries(12):
        assert staff_client.get(reverse("desk:week", args=[gk.pk]) + f"?start={monday}").status_code == 200
    with django_assert_max_num_queries(12):
        assert staff_client.get(reverse("desk:day", args=[gk.clinic_id]) + f"?date={monday}").status_code == 200


def test_acknowledgement_is_rechecked_when_saving(gk, staff, patient):
    """A session booked after the warning was shown is not silently stranded: the save is refused."""
    offering = offering_for(gk)
    tz = gk.clinic.tz
    monday = future_weekday(days_ahead=65)
    first = make_booking(offering, patient, Booking.CONFIRMED, start=local(monday, 9, tz)).appointments.get()
    rows = [(d, time(13), time(17)) for d in range(5)]
    assert calendar_service.stranded_appointments(gk, new_weekly_rows=rows) == [first]
    late = make_booking(offering, patient, Booking.AWAITING_PAYMENT, start=local(monday, 12, tz),
                        status=Appointment.HELD).appointments.get()
    with pytest.raises(calendar_service.StrandedSessions) as refused:
        calendar_service.set_weekly_hours(gk, rows, staff, acknowledged={first.pk})
    assert [a.pk for a in refused.value.appointments] == [first.pk, late.pk]
    assert not gk.weekly_hours.filter(start=time(13)).exists()
    calendar_service.set_weekly_hours(gk, rows, staff, acknowledged={first.pk, late.pk})
    assert gk.weekly_hours.filter(start=time(13)).count() == 5
    # a held session whose hold ran out no longer counts
    Allocation.objects.filter(appointment=late).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert calendar_service.stranded_appointments(gk, new_weekly_rows=rows) == [first]


@pytest.mark.parametrize("lang", ["ru", "kk", "zh-hans"])
def test_desk_speaks_the_staff_members_language(staff_client, gk, patient, lang):
    from bookings.models import MedicalRecord

    booking = make_booking(offering_for(gk), patient, Booking.QUOTED,
                           start=local(future_weekday(days_ahead=75), 10, gk.clinic.tz))
    record = MedicalRecord.objects.create(owner=patient, booking=booking, file="records/y.pdf", original_name="y.pdf",
                                          content_type="application/pdf", size=10, sha256="1" * 64)
    headers = {"HTTP_ACCEPT_LANGUAGE": lang}
    for url in (reverse("desk:home"), reverse("desk:week", args=[gk.pk]), reverse("desk:hours", args=[gk.pk]),
                reverse("desk:exceptions", args=[gk.pk]), reverse("desk:queue", args=[gk.clinic_id]),
                reverse("desk:day", args=[gk.clinic_id])):
        response = staff_client.get(url, **headers)
        assert response.status_code == 200, url
        assert f'lang="{lang}"' in response.content.decode(), url
    page = staff_client.get(reverse("desk:booking", args=[booking.pk]), **headers).content.decode()
    assert f"/{lang}/my/records/{record.id}/" in page


def test_the_desk_speaks_the_staff_members_language_and_names_the_patient_as_in_the_passport(staff_client, gk,
                                                                                               django_user_model):
    from bookings.models import PatientProfile

    patient = django_user_model.objects.create_user("kz-pat", "kz.patient@example.com", "a-long-password-5")
    PatientProfile.objects.create(user=patient, given_names="AIGERIM", family_name="NURLANOVA", citizenship="KG",
                                  home_timezone="Asia/Bishkek")
    booking = make_booking(offering_for(gk), patient, state=Booking.REQUESTED)
    Booking.objects.filter(pk=booking.pk).update(
        language="kk", patient_timezone="Asia/Bishkek",
        questionnaire={"diagnosis": "Schwannoma", "prior_treatment": "none", "current_state": "walks"})
    page = staff_client.get(reverse("desk:booking", args=[booking.pk]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    home = staff_client.get(reverse("desk:home"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "NURLANOVA AIGERIM" in page
    assert "казахский" in page and ">kk<" not in page
    assert "Киргизия" in page  # citizenship, in Russian
    assert "Бишкек (Киргизия)" in page and "Asia/" not in page
    from bookings.lifecycle.forms import RequestTreatmentForm

    with translation.override("ru"):
        label = str(RequestTreatmentForm.base_fields["diagnosis"].label)
    assert label in page and "Prior treatment" not in page
    assert "Гамма-нож (демо)" in home and "Gamma Knife unit" not in home

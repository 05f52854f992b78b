"""Booking API: offerings, slots, holds, bookings, payments, cancellation — the same service functions."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from uuid import UUID

from allauth.headless.contrib.ninja.security import x_session_token_auth
from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone, translation
from ninja import Router, Schema, Status
from ninja.pagination import paginate
from ninja.security import APIKeyHeader, django_auth

from bookings import errors
from bookings.engine import holds, slots
from bookings.lifecycle import cancellation, reasons
from bookings.lifecycle import services as lifecycle
from bookings.models import Booking, Hold, Quote
from bookings.payments import services as payments_service
from bookings.review import services as review
from catalog.api import (
    ApiError,
    Each,
    OfferingOut,
    Pagination,
    Problem,
    offering_out,
    responses,
    use_kind,
    use_language,
)
from catalog.models import Offering
from portal.ratelimit import allow, parse


class SessionToken(APIKeyHeader):
    """allauth's app session token (the ``X-Session-Token`` header), declared as an API key header: without
    ``param_name`` the OpenAPI security scheme has no ``name``/``in`` and the document is invalid (TRAPS.md)."""

    param_name = "X-Session-Token"

    def authenticate(self, request, key):
        return x_session_token_auth(request) if key else None


router = Router(tags=["booking"])
AUTH = [SessionToken(), django_auth]
MAX_DAYS = 62
# Every date a user sends is kept within about two years of today before any arithmetic: the ends of the
# calendar (0001-01-01, 9999-12-31) overflowed (TRAPS.md).
REACH = timedelta(days=731)
# Statuses every operation can answer: 400 (a NUL byte, an unreadable body), 422 (a value of the wrong type);
# with a login, 401; changing something with the session cookie, 403 when the CSRF token is missing.
READ, READ_AUTH, WRITE_AUTH = (400, 422), (400, 401, 422), (400, 401, 403, 422)
# What a domain refusal can answer (bookings.errors.HTTP_STATUS): 400, 409 (the state does not allow it), 503 (busy).
DOMAIN = (400, 409, 503)


class RateLimited(ApiError):
    """429, with the seconds until the limit's window opens again (the ``Retry-After`` header)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "rate_limited", translation.gettext("Too many requests. Please wait a minute and "
                                                                  "try again."))
        self.retry_after = retry_after


# Ids beyond PostgreSQL's bigint are refused before any query (they were a DataError there, a 500).
MAX_ID = 2**63 - 1


def known_id(value: int | None) -> bool:
    return value is not None and 0 < value <= MAX_ID


def user_of(request):
    user = request.auth
    return user if getattr(user, "is_authenticated", False) else request.user


def limited(request, scope):
    user = user_of(request)
    if not allow(scope, str(user.pk), settings.BOOKING_RATE_LIMIT):
        period = parse(settings.BOOKING_RATE_LIMIT)[1]
        raise RateLimited(max(1, period - int(time.time()) % period))


def out_of_reach(day: date) -> bool:
    """True for a date more than about two years from today (compared as dates: no arithmetic on it)."""
    today = timezone.now().date()
    return not (today - REACH <= day <= today + REACH)


def far_date(field: str) -> Status:
    return Status(400, {"code": field, "message": str(translation.gettext(
        "Choose a date within two years of today."))})


class BookingProblem(Problem):
    """A refusal of the booking API; a taken slot (409 ``taken``) lists the nearest free ``alternatives``."""

    alternatives: list[dict] = []


def problem(exc: errors.BookingError, tz=None) -> Status:
    body = {"code": exc.code, "message": str(exc.message)}
    if isinstance(exc, errors.SlotTaken):
        body["alternatives"] = [option_out(o, tz) for o in exc.alternatives]
    return Status(errors.http_status(exc), body)


def booking_responses(ok: dict, *errors: int) -> dict:
    return responses(ok, *errors, problem=BookingProblem)


def option_out(option, tz=None) -> dict:
    """Times in ISO 8601 with the clinic's own offset (+05:00 in Kazakhstan), as patients read them."""
    def iso(dt):
        return (dt.astimezone(tz) if tz else dt).isoformat()

    return {"start": iso(option.start), "end": iso(option.sessions[-1][1]) if option.sessions else None,
            "sessions": [{"start": iso(s), "end": iso(e)} for s, e in option.sessions]}


def slot_json(tz):
    """One slot as JSON in the clinic's offset, computed once per cached answer (``slots.offering_slots``)."""
    def present(option) -> str:
        return json.dumps(option_out(option, tz), ensure_ascii=False)

    return present


class SlotsResponse(HttpResponse):
    """The slot list is the API's hottest answer: built as JSON directly (its shape is SlotsOut in the
    OpenAPI document) from slots already serialised in the cache, instead of re-validating hundreds of
    timestamps through pydantic on every request."""

    def __init__(self, offering, slots_json: list[str]):
        head = json.dumps({"offering": offering.id, "timezone": offering.clinic.zone_name,
                           "course": offering.sessions > 1}, ensure_ascii=False)
        super().__init__(f'{head[:-1]}, "slots": [{", ".join(slots_json)}]}}', content_type="application/json")


def appointments_out(appointments, tz) -> list[dict]:
    return [{"seq": a.seq, "start": a.start.astimezone(tz), "end": a.end.astimezone(tz), "status": a.status}
            for a in appointments]


@router.get("/offerings", response=responses({200: list[OfferingOut]}, *READ),
            summary="Offerings of a service, or of a clinic (a page: items, count, next)",
            description="Offerings of every kind, each with its `kind`. `kind` lists one kind only: `treatment`, "
                        "`consultation` (online consultations with a specialist) or `second_opinion` (written "
                        "opinions from the patient's records); any other value is a 400 with code `kind`.")
@paginate(Pagination)
def list_offerings(request, service: str | None = None, clinic: str | None = None, lang: str = "en",
                   kind: str | None = None):
    # a plain string checked by use_kind: a paginated view's annotations are resolved in ninja's module, so a
    # Literal from catalog.api cannot be named in the signature
    lang = use_language(lang)
    kind = use_kind(kind)
    qs = Offering.objects.bookable().select_related("page", "clinic__city").order_by("price", "id")
    if service:
        qs = qs.filter(page__slug=service)
    if clinic:
        qs = qs.filter(clinic__slug=clinic)
    if kind:
        qs = qs.filter(kind=kind)
    return Each(qs, offering_out, lang)


class SessionOut(Schema):
    start: datetime
    end: datetime


class SlotOut(Schema):
    start: datetime
    end: datetime | None
    sessions: list[SessionOut]


class SlotsOut(Schema):
    offering: int
    timezone: str
    course: bool
    slots: list[SlotOut]


@router.get("/offerings/{offering_id}/slots", response=booking_responses({200: SlotsOut}, *READ),
            summary="Free slots (or whole-course start options) between two local dates")
def offering_slots(request, offering_id: int, start: date, end: date):
    if not known_id(offering_id):
        return problem(errors.BookingError(translation.gettext("This treatment cannot be booked at the moment."), "not_bookable"))
    try:
        offering = holds.browse_offering(offering_id)
    except errors.BookingError as exc:
        return problem(exc)
    if out_of_reach(start) or out_of_reach(end):
        return far_date("range")
    if end < start:
        return Status(400, {"code": "range", "message": str(translation.gettext(
            "The end date is before the start date."))})
    if (end - start).days > MAX_DAYS:
        return Status(400, {"code": "range", "message": str(translation.gettext(
            "Ask for at most %(days)d days at a time.") % {"days": MAX_DAYS})})
    return SlotsResponse(offering, slots.offering_slots(offering, start, end, present=slot_json(offering.clinic.tz)))


class HoldIn(Schema):
    offering: int
    start: datetime
    client_key: str


class AppointmentOut(Schema):
    seq: int
    start: datetime
    end: datetime
    status: str


class HoldOut(Schema):
    id: UUID
    offering: int
    status: str
    expires_at: datetime
    appointments: list[AppointmentOut]


def hold_out(hold: Hold) -> dict:
    return {"id": hold.id, "offering": hold.offering_id, "status": hold.status, "expires_at": hold.expires_at,
            "appointments": appointments_out(hold.appointments.order_by("seq"), hold.offering.clinic.tz)}


@router.post("/holds", auth=AUTH, response=booking_responses({201: HoldOut}, *WRITE_AUTH, 409, 429, 503),
             summary="Hold a slot or a whole course for a few minutes")
def create_hold(request, payload: HoldIn):
    limited(request, "hold")
    user = user_of(request)
    if not known_id(payload.offering):
        return problem(errors.BookingError(translation.gettext("This treatment cannot be booked at the moment."), "not_bookable"))
    try:
        offering = holds.browse_offering(payload.offering)
    except errors.BookingError as exc:
        return problem(exc)
    if out_of_reach(payload.start.date()):
        return far_date("start")
    if payload.start.tzinfo is None:
        return Status(400, {"code": "start", "message": str(translation.gettext(
            "Give the time with its time zone offset."))})
    try:
        hold = holds.place_hold(user, offering, payload.start, payload.client_key)
    except errors.BookingError as exc:
        return problem(exc, offering.clinic.tz)
    return Status(201, hold_out(hold))


@router.get("/holds/{hold_id}", auth=AUTH, response=responses({200: HoldOut}, *READ_AUTH, 404))
def get_hold(request, hold_id: UUID):
    return hold_out(get_object_or_404(Hold, pk=hold_id, user=user_of(request)))


@router.delete("/holds/{hold_id}", auth=AUTH, response=booking_responses({204: None}, *WRITE_AUTH, 404, 409, 503),
               summary="Release a hold")
def delete_hold(request, hold_id: UUID):
    hold = get_object_or_404(Hold, pk=hold_id, user=user_of(request))
    try:
        holds.release_hold(user_of(request), hold)
    except errors.BookingError as exc:
        return problem(exc)
    return Status(204, None)


class BookingIn(Schema):
    hold: UUID | None = None
    quote: int | None = None
    start: datetime | None = None
    client_key: str | None = None


class PaymentOut(Schema):
    id: int
    state: str
    amount: int
    currency: str
    refunded: int


class BookingOut(Schema):
    id: int
    reference: str
    state: str
    service: str
    clinic: str
    timezone: str
    currency: str
    price: int
    deposit: int
    payment_due_at: datetime | None
    appointments: list[AppointmentOut]
    payments: list[PaymentOut]


def booking_out(b: Booking) -> dict:
    return {
        "id": b.id, "reference": b.reference, "state": b.state, "service": b.service_title, "clinic": b.clinic.title,
        "timezone": b.clinic.zone_name, "currency": b.currency, "price": b.price, "deposit": b.deposit,
        "payment_due_at": b.payment_due_at,
        "appointments": appointments_out(b.appointments.order_by("seq"), b.clinic.tz),
        "payments": [{"id": p.id, "state": p.state, "amount": p.amount, "currency": p.currency,
                      "refunded": p.refunded_amount} for p in b.payments.prefetch_related("refunds")],
    }


@router.post("/bookings", auth=AUTH,
             response=booking_responses({201: BookingOut}, *WRITE_AUTH, 404, 409, 429, 503),
             summary="Book from a hold, or accept a quote (with a start and client key)")
def create_booking(request, payload: BookingIn):
    limited(request, "booking")
    user = user_of(request)
    if payload.start is not None and out_of_reach(payload.start.date()):
        return far_date("start")
    try:
        if payload.hold:
            hold = get_object_or_404(Hold, pk=payload.hold, user=user)
            booking = lifecycle.create_booking_from_hold(user, hold)
        elif payload.quote:
            if not known_id(payload.quote):
                raise Http404
            quote = get_object_or_404(Quote, pk=payload.quote, booking__user=user)
            if not payload.start or not payload.client_key:
                raise errors.BookingError(translation.gettext("Give a start and a client key to accept a quote."),
                                            "start")
            booking = review.accept_quote(user, quote.booking, payload.start, payload.client_key)
        else:
            raise errors.BookingError(translation.gettext("Give a hold or a quote."), "invalid")
    except errors.BookingError as exc:
        return problem(exc)
    return Status(201, booking_out(booking))


def my_booking(request, booking_id) -> Booking:
    if not known_id(booking_id):
        raise Http404
    return get_object_or_404(Booking.objects.select_related("clinic__city"), pk=booking_id, user=user_of(request))


@router.get("/bookings/{booking_id}", auth=AUTH, response=responses({200: BookingOut}, *READ_AUTH, 404))
def get_booking(request, booking_id: int):
    return booking_out(my_booking(request, booking_id))


class PayIn(Schema):
    payment_method: str


class PayOut(Schema):
    payment: int
    state: str
    client_secret: str | None = None
    booking_state: str


@router.post("/bookings/{booking_id}/payments", auth=AUTH,
             response=booking_responses({200: PayOut}, *WRITE_AUTH, 402, 404, 409, 429, 503),
             summary="Pay the deposit with a PaymentMethod id (finalized on the server)")
def pay(request, booking_id: int, payload: PayIn):
    limited(request, "pay")
    booking = my_booking(request, booking_id)
    try:
        payment = payments_service.pay_deposit(booking, user_of(request), payload.payment_method)
    except errors.BookingError as exc:
        return problem(exc)
    booking.refresh_from_db()
    return {"payment": payment.pk, "state": payment.state, "client_secret": getattr(payment, "client_secret", None)
            if payment.state == "requires_action" else None, "booking_state": booking.state}


class MoveIn(Schema):
    start: datetime
    client_key: str


@router.post("/bookings/{booking_id}/reschedule", auth=AUTH,
             response=booking_responses({200: BookingOut}, *WRITE_AUTH, 404, 409, 429, 503),
             summary="Move a confirmed booking to new dates (held first, then swapped in)")
def reschedule(request, booking_id: int, payload: MoveIn):
    limited(request, "hold")
    booking = my_booking(request, booking_id)
    if out_of_reach(payload.start.date()):
        return far_date("start")
    try:
        booking = lifecycle.reschedule(user_of(request), booking, payload.start, payload.client_key)
    except errors.BookingError as exc:
        return problem(exc, booking.clinic.tz)
    return booking_out(booking)


class CancelIn(Schema):
    reason: str = reasons.PATIENT


class CancelOut(Schema):
    state: str
    refund: int
    paid: int
    explanation: str


def cancel_refusal(booking: Booking, reason: str, retry_ok: bool = False) -> Status | None:
    """The API's door to the one rule, ``Booking.can_cancel``: None when the patient may cancel with ``reason`` now
    (or, with ``retry_ok``, when it is a retry of a cancellation already done), else the refusal: an unknown
    reason 400, the clinic's reason 403 (it would refund in full), a state that cannot be cancelled 409."""
    if booking.can_cancel(reasons.PATIENT_SIDE, reason):
        return None
    entry = reasons.REASONS.get(reason)
    if entry is None:
        return problem(errors.BookingError(translation.gettext("Unknown cancellation reason."), "reason"))
    if entry.by != reasons.PATIENT_SIDE:
        return problem(errors.BookingError(translation.gettext("Only the clinic can give this reason."),
                                           "reason_not_allowed"))
    if retry_ok and booking.state in (Booking.CANCELLED, Booking.REFUNDED):
        return None
    return problem(errors.InvalidTransition(translation.gettext("This booking can no longer be cancelled."),
                                            "invalid_state"))


@router.get("/bookings/{booking_id}/cancel", auth=AUTH,
            response=responses({200: CancelOut}, *READ_AUTH, 403, 404, 409),
            summary="What cancelling now would refund (changes nothing)")
def cancel_preview(request, booking_id: int, reason: str = reasons.PATIENT):
    booking = my_booking(request, booking_id)
    refusal = cancel_refusal(booking, reason)
    if refusal:
        return refusal
    q = cancellation.refund_due(booking, reason)
    return {"state": booking.state, "refund": q.amount, "paid": q.paid, "explanation": q.explanation}


@router.post("/bookings/{booking_id}/cancel", auth=AUTH,
             response=booking_responses({200: CancelOut}, *WRITE_AUTH, 404, 409, 503),
             summary="Cancel with one of the patient's reasons; the refund owed under the policy is started")
def cancel(request, booking_id: int, payload: CancelIn):
    booking = my_booking(request, booking_id)
    refusal = cancel_refusal(booking, payload.reason, retry_ok=True)
    if refusal:
        return refusal
    try:
        booking, q = cancellation.cancel_booking(booking, user_of(request), payload.reason)
    except errors.BookingError as exc:
        return problem(exc)
    booking.refresh_from_db()
    return {"state": booking.state, "refund": q.amount, "paid": q.paid, "explanation": q.explanation}



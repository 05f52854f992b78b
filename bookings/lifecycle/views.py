"""Patient-facing booking views (thin: every change goes through the service modules).

Server-rendered and usable without JavaScript, except for typing a card number (Stripe's card field
needs it); static/js/booking.js only enhances (countdown, card payment, no double submits).
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from bookings import errors
from bookings.engine import holds, slots
from bookings.lifecycle import cancellation, reasons
from bookings.lifecycle import services as lifecycle
from bookings.lifecycle.forms import (
    PATIENT_CANCEL_REASONS,
    CancelForm,
    MessageForm,
    RequestTreatmentForm,
    SlotChoiceForm,
)
from bookings.models import Appointment, Booking, PatientProfile, Payment
from bookings.patients import consent
from bookings.payments import get_provider
from bookings.review import services as review
from catalog.models import Offering
from portal.l10n import money
from portal.net import client_ip
from portal.ratelimit import allow

log = logging.getLogger("emhana.bookings")

try:  # written by another helper; without it the request form simply has no upload field
    from bookings.patients.records import RecordRejected, store_record
except ImportError:  # pragma: no cover - depends on the deployment
    store_record = None
    RecordRejected = None


# --------------------------------------------------------------------------------- helpers


def patient_zone(user):
    """The patient's home zone from their profile, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    profile = PatientProfile.objects.filter(user=user).only("home_timezone").first()
    name = getattr(profile, "home_timezone", "") or ""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _too_many(request, scope) -> HttpResponse | None:
    """The same per-user limit as the API (shared cache): a 429 page, or None when the request may go on."""
    if allow(scope, str(request.user.pk), getattr(settings, "BOOKING_RATE_LIMIT", "30/m")):
        return None
    return render(request, "429.html", status=429)


def _offering_or_404(offering_id) -> Offering:
    if not Offering.objects.filter(pk=offering_id).exists():
        raise Http404
    return Offering.objects.select_related("clinic__city", "page").get(pk=offering_id)


def _bookable(offering):
    """The offering if it can be booked now, else a translated reason."""
    try:
        return holds.ensure_bookable(offering), ""
    except errors.BookingError as exc:
        return None, str(exc.message)


def _my_booking(request, reference) -> Booking:
    """Only the owner sees a booking: anyone else gets 404, not 403, so references are not revealed."""
    return get_object_or_404(Booking.objects.select_related("offering__page", "clinic__city"),
                             reference=reference, user=request.user)


def _group_by_day(options, tz, patient_tz=None):
    """[(local date, [slot dicts])] in the clinic's zone."""
    days: OrderedDict[date, list] = OrderedDict()
    for option in options:
        local_start = option.start.astimezone(tz)
        sessions = [(s.astimezone(tz), e.astimezone(tz)) for s, e in option.sessions]
        days.setdefault(local_start.date(), []).append({
            "start": local_start,
            "end": sessions[-1][1] if sessions else None,
            "iso": option.start.isoformat(),
            "sessions": sessions,
            "patient_start": option.start.astimezone(patient_tz) if patient_tz else None,
        })
    return list(days.items())


def next_step(booking: Booking) -> str:
    """What happens next for this booking, in the patient's language."""
    texts = {
        Booking.REQUESTED: _("The clinic has your request. A clinician will review your case and records; you "
                             "will get a quote or questions by email."),
        Booking.UNDER_REVIEW: _("A clinician is reviewing your case. You will get a quote or questions by email."),
        Booking.QUOTED: _("The clinic sent you a quote. Read it, then choose your dates and pay the deposit to "
                          "confirm."),
        Booking.AWAITING_PAYMENT: _("Your dates are held for you. Pay the deposit before the hold runs out to "
                                    "confirm the booking."),
        Booking.CONFIRMED: _("Your booking is confirmed. Download the visa support letter if you need a visa, and "
                             "plan your travel."),
        Booking.COMPLETED: _("Your treatment is complete. We hope you are well."),
        Booking.CANCELLED: _("This booking is cancelled. Any refund owed is on its way to your card."),
        Booking.DECLINED: _("The clinic cannot offer this treatment for your case. Their reason is below."),
        Booking.EXPIRED: _("The time to pay ran out and the dates were released. You can choose a time again."),
        Booking.REFUNDED: _("This booking was refunded."),
    }
    if booking.offering.kind == Offering.SECOND_OPINION and booking.state in (Booking.REQUESTED,
                                                                             Booking.UNDER_REVIEW):
        return _("A clinician is reading your records and questions. You will get a written opinion here and by "
                 "email, or questions if they need more.")
    if booking.state == Booking.CANCELLED and not Payment.objects.filter(booking=booking,
                                                                          state=Payment.SUCCEEDED).exists():
        return _("This booking is cancelled. Nothing was paid, so nothing is owed.")
    return texts.get(booking.state, "")


CANCELLABLE = {Booking.REQUESTED, Booking.UNDER_REVIEW, Booking.QUOTED, Booking.AWAITING_PAYMENT, Booking.CONFIRMED}


def _sessions(booking):
    return list(booking.appointments.exclude(status=Appointment.RELEASED).order_by("seq", "start"))


# --------------------------------------------------------------------------------- dashboard


@login_required
@never_cache
def dashboard(request):
    now = timezone.now()
    for overdue in request.user.bookings.filter(state=Booking.AWAITING_PAYMENT, payment_due_at__lte=now):
        lifecycle.refresh(overdue, now)
    bookings = list(request.user.bookings.select_related("clinic__city", "offering").prefetch_related("appointments"))
    rows = []
    for booking in bookings:
        tz = booking.clinic.tz
        first = next((a for a in sorted(booking.appointments.all(), key=lambda a: a.start)
                      if a.status != Appointment.RELEASED), None)
        rows.append({"booking": booking, "next": next_step(booking), "first": first.start.astimezone(tz)
                     if first else None})
    has_profile = PatientProfile.objects.filter(user=request.user).exists()
    return render(request, "bookings/dashboard.html", {"rows": rows, "bookings": bookings,
                                                       "has_profile": has_profile})


# --------------------------------------------------------------------------------- direct booking


def _week_start(request, tz) -> tuple[date, str]:
    today = timezone.now().astimezone(tz).date()
    raw = request.GET.get("week", "")
    if not raw:
        return today, ""
    try:
        chosen = date.fromisoformat(raw)
    except ValueError:
        return today, _("That week could not be read; showing the coming days instead.")
    if chosen < today:
        return today, ""
    if chosen > today + timedelta(days=400):
        return today, _("That week is too far ahead; showing the coming days instead.")
    return chosen, ""


def _slot_page(request, offering, *, status=200, error="", alternatives=None, week_start=None, booking=None):
    tz = offering.clinic.tz
    note = ""
    if week_start is None:
        week_start, note = _week_start(request, tz)
    week_end = week_start + timedelta(days=6)
    patient_tz = patient_zone(request.user)
    options = slots.offering_slots(offering, week_start, week_end)
    today = timezone.now().astimezone(tz).date()
    context = {
        "offering": offering,
        "tz": tz,
        "clinic_zone": offering.clinic.zone_label,
        "patient_zone": str(patient_tz) if patient_tz and str(patient_tz) != offering.clinic.zone_name else "",
        "days": _group_by_day(options, tz, patient_tz if patient_tz and str(patient_tz) != str(tz) else None),
        "week_start": week_start,
        "week_end": week_end,
        "prev_week": (week_start - timedelta(days=7)) if week_start > today else None,
        "next_week": week_start + timedelta(days=7),
        "is_course": offering.sessions > 1,
        "client_key": uuid.uuid4().hex,
        "error": error,
        "note": note,
        "alternatives": _group_by_day(alternatives, tz, patient_tz) if alternatives else [],
        "action": reverse("booking_reschedule", args=[booking.reference]) if booking
        else reverse("book_offering", args=[offering.pk]),
        "moving": booking,
        "chosen": _chosen_slot(request, options, tz, patient_tz) if booking is None else None,
        "anonymous": not request.user.is_authenticated,
    }
    return render(request, "bookings/slots.html", context, status=status)


def _chosen_slot(request, options, tz, patient_tz):
    """?start=<iso>: the time a visitor chose before signing up, still free — shown first, to confirm."""
    raw = request.GET.get("start", "")
    if not raw:
        return None
    try:
        start = SlotChoiceForm.parse_start(raw)
    except ValueError:
        return None
    option = next((o for o in options if o.start == start), None)
    if option is None:
        return {"gone": True}
    return _group_by_day([option], tz, patient_tz)[0][1][0]


def _signup_to_keep(request, offering, start):
    """An anonymous visitor chose a time: an account is needed to hold it; come back to it after sign-up."""
    back = reverse("book_offering", args=[offering.pk]) + "?" + urlencode(
        {"start": start.isoformat(), "week": start.astimezone(offering.clinic.tz).date().isoformat()})
    return redirect(reverse("account_signup") + "?" + urlencode({"next": back}))


@never_cache
@require_http_methods(["GET", "POST"])
def book_offering(request, offering_id):
    """Anyone may look at the free times; choosing one needs an account (the choice survives sign-up)."""
    offering = _offering_or_404(offering_id)
    if offering.review_required:
        return redirect("request_treatment", offering_id=offering.pk)
    bookable, reason = _bookable(offering)
    if bookable is None:
        return render(request, "bookings/not_bookable.html", {"offering": offering, "reason": reason}, status=410)
    offering = bookable
    if request.method == "GET":
        return _slot_page(request, offering)

    limited = _too_many(request, "hold") if request.user.is_authenticated else None
    if limited:
        return limited
    form = SlotChoiceForm(request.POST)
    if not form.is_valid():
        return _slot_page(request, offering, status=400, error=form.first_error())
    start = form.cleaned_data["start"]
    if not request.user.is_authenticated:
        return _signup_to_keep(request, offering, start)
    week = start.astimezone(offering.clinic.tz).date()
    today = timezone.now().astimezone(offering.clinic.tz).date()
    week = max(week, today)
    try:
        hold = holds.place_hold(request.user, offering, start, form.cleaned_data["client_key"])
        booking = lifecycle.create_booking_from_hold(request.user, hold)
    except errors.BookingError as exc:
        return _slot_error_page(request, offering, exc, week_start=week)
    return redirect("booking_checkout", reference=booking.reference)


def _slot_error_page(request, offering, exc: errors.BookingError, **kwargs):
    """The slot picker again with the refusal: a lost race (409) also lists the free times nearby."""
    alternatives = exc.alternatives if isinstance(exc, errors.SlotTaken) else None
    return _slot_page(request, offering, status=min(errors.http_status(exc), 503), error=str(exc.message),
                      alternatives=alternatives, **kwargs)


# --------------------------------------------------------------------------------- review first


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def request_treatment(request, offering_id):
    offering = _offering_or_404(offering_id)
    if not offering.review_required:
        return redirect("book_offering", offering_id=offering.pk)
    bookable, reason = _bookable(offering)
    if bookable is None:
        return render(request, "bookings/not_bookable.html", {"offering": offering, "reason": reason}, status=410)
    offering = bookable
    uploads = store_record is not None
    status = 200
    if request.method == "POST":
        limited = _too_many(request, "booking")
        if limited:
            return limited
        form = RequestTreatmentForm(request.POST, request.FILES, uploads_enabled=uploads)
        if form.is_valid():
            booking, file_error = _create_request(request, offering, form, uploads)
            if booking is not None:
                messages.success(request, _("Your request is sent. The clinic will review it and reply by email."))
                return redirect("booking_detail", reference=booking.reference)
            form.add_error("records" if uploads else None, file_error)
        status = 400
        messages.error(request, _("Please correct the fields marked below; nothing was sent yet."))
    else:
        form = RequestTreatmentForm(uploads_enabled=uploads)
    return render(request, "bookings/request.html", {"offering": offering, "form": form, "uploads": uploads},
                  status=status)


def _create_request(request, offering, form, uploads):
    """Create the requested booking and store its files, all or nothing. Returns (booking, error)."""
    stored = []
    try:
        with transaction.atomic():
            booking = review.request_treatment(request.user, offering, note=form.cleaned_data["note"].strip(),
                                                 questionnaire=form.questionnaire())
            consent.give(booking, request.user, ip=client_ip(request))  # asked in the form, before anything is shared
            for upload in (form.cleaned_data.get("records") or []) if uploads else []:
                stored.append(store_record(request.user, upload, booking=booking))
    except errors.BookingError as exc:
        _discard(stored)
        return None, str(exc.message)
    except Exception as exc:
        if RecordRejected is not None and isinstance(exc, RecordRejected):
            _discard(stored)
            return None, str(exc.message)
        _discard(stored)
        raise
    return booking, ""


def _discard(records):
    for record in records:
        try:
            record.file.delete(save=False)
        except Exception:  # noqa: BLE001 - best effort clean-up of a rolled-back upload
            log.warning("could not remove the file of a rolled-back record %s", record.pk)


# --------------------------------------------------------------------------------- booking page


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def booking_detail(request, reference):
    booking = lifecycle.refresh(_my_booking(request, reference))
    message_form = MessageForm()
    status = 200
    if request.method == "POST":
        message_form = MessageForm(request.POST)
        if message_form.is_valid():
            lifecycle.post_message(booking, request.user, message_form.cleaned_data["body"], from_clinic=False)
            messages.success(request, _("Your message was sent to the clinic."))
            return redirect(reverse("booking_detail", args=[booking.reference]) + "#messages")
        status = 400
    tz = booking.clinic.tz
    quote = booking.current_quote()
    payments = list(booking.payments.prefetch_related("refunds").order_by("created_at"))
    refunds = [r for p in payments for r in p.refunds.all()]
    patient_tz = patient_zone(request.user)
    context = {
        "booking": booking,
        "next": next_step(booking),
        "tz": tz,
        "clinic_zone": booking.clinic.zone_label,
        "patient_zone": str(patient_tz) if patient_tz and str(patient_tz) != booking.clinic.zone_name else "",
        "sessions": [{"a": a, "start": a.start.astimezone(tz), "end": a.end.astimezone(tz),
                      "patient_start": a.start.astimezone(patient_tz) if patient_tz else None}
                     for a in _sessions(booking)],
        "quote": quote,
        "quote_valid": bool(quote and quote.valid_until > timezone.now()),
        "payments": payments,
        "refunds": refunds,
        "thread": booking.messages.select_related("author").order_by("created_at", "id"),
        "message_form": message_form,
        "can_cancel": booking.state in CANCELLABLE,
        "can_reschedule": lifecycle.can_reschedule(booking),
        "can_pay": booking.state == Booking.AWAITING_PAYMENT and not booking.payment_overdue(),
        "paying": booking.payment_overdue(),  # money is moving past the hold: the payment decides
        "review_days": settings.REVIEW_RESPONSE_DAYS,
        "records": list(booking.records.order_by("uploaded_at")),
        "can_choose_dates": booking.state == Booking.QUOTED and bool(quote and quote.valid_until > timezone.now()),
        "visa_letter": booking.state == Booking.CONFIRMED,
        "rebook_url": _rebook_url(booking),
    }
    return render(request, "bookings/detail.html", context, status=status)


def _rebook_url(booking):
    if booking.state != Booking.EXPIRED:
        return ""
    name = "request_treatment" if booking.offering.review_required else "book_offering"
    return reverse(name, args=[booking.offering_id])


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def accept_quote(request, reference):
    booking = lifecycle.refresh(_my_booking(request, reference))
    if booking.state == Booking.AWAITING_PAYMENT:
        return redirect("booking_checkout", reference=booking.reference)
    quote = booking.current_quote()
    if booking.state != Booking.QUOTED or quote is None:
        messages.info(request, _("There is no quote to accept on this booking."))
        return redirect("booking_detail", reference=booking.reference)
    error, status, alternatives = "", 200, None
    if request.method == "POST":
        limited = _too_many(request, "hold")
        if limited:
            return limited
        form = SlotChoiceForm(request.POST)
        if not form.is_valid():
            error, status = form.first_error(), 400
        else:
            try:
                booking = review.accept_quote(request.user, booking, form.cleaned_data["start"],
                                                form.cleaned_data["client_key"])
                return redirect("booking_checkout", reference=booking.reference)
            except errors.SlotTaken as exc:
                error, status, alternatives = str(exc.message), 409, exc.alternatives
            except errors.BookingError as exc:
                error, status = str(exc.message), min(errors.http_status(exc), 503)
    tz = booking.clinic.tz
    patient_tz = patient_zone(request.user)
    shown_tz = patient_tz if patient_tz and str(patient_tz) != str(tz) else None
    options = review.quote_slots(booking) if quote.valid_until > timezone.now() else []
    return render(request, "bookings/accept_quote.html", {
        "booking": booking, "quote": quote, "days": _group_by_day(options, tz, shown_tz), "tz": tz,
        "clinic_zone": booking.clinic.zone_label, "patient_zone": str(shown_tz) if shown_tz else "",
        "is_course": booking.offering.sessions > 1, "client_key": uuid.uuid4().hex, "error": error,
        "alternatives": _group_by_day(alternatives, tz, shown_tz) if alternatives else [],
        "quote_expired": quote.valid_until <= timezone.now(),
        "action": reverse("booking_accept_quote", args=[booking.reference]),
    }, status=status)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def cancel(request, reference):
    booking = lifecycle.refresh(_my_booking(request, reference))
    if booking.state not in CANCELLABLE:
        messages.info(request, _("This booking can no longer be cancelled here."))
        return redirect("booking_detail", reference=booking.reference)
    status = 200
    if request.method == "POST":
        form = CancelForm(request.POST)
        if form.is_valid():
            try:
                booking, quote = cancellation.cancel_booking(booking, request.user, form.cleaned_data["reason"])
            except errors.BookingError as exc:
                form.add_error(None, str(exc.message))
            else:
                if quote.amount:
                    messages.success(request, _("Your booking is cancelled. A refund of %(amount)s is on its way "
                                                "to your card.") % {"amount": money(quote.amount, booking.currency)})
                else:
                    messages.success(request, _("Your booking is cancelled."))
                return redirect("booking_detail", reference=booking.reference)
        status = 400
    else:
        initial = request.GET.get("reason")
        form = CancelForm(initial={"reason": initial if initial in PATIENT_CANCEL_REASONS else reasons.PATIENT})
    previews = [{"reason": key, "label": cancellation.CANCEL_REASONS[key], "refund": cancellation.refund_due(booking, key)}
                for key in PATIENT_CANCEL_REASONS]
    return render(request, "bookings/cancel.html", {"booking": booking, "form": form, "previews": previews,
                                                    "paid": previews[0]["refund"].paid}, status=status)


# --------------------------------------------------------------------------------- checkout


def _stripe_js_url() -> str:
    if getattr(settings, "STRIPE_JS_TEST_DOUBLE", False):
        return static("js/stripe-test-double.js")
    return "https://js.stripe.com/v3/"


def _publishable_key() -> str:
    try:
        return getattr(get_provider(), "publishable_key", "") or ""
    except ImproperlyConfigured:
        return getattr(settings, "STRIPE_PUBLISHABLE_KEY", "") or ""


@login_required
@never_cache
def checkout(request, reference):
    booking = lifecycle.refresh(_my_booking(request, reference))
    if booking.state == Booking.QUOTED:
        messages.info(request, _("The time to pay ran out and those dates were released, but the clinic's quote "
                                 "still stands: choose new dates inside its window."))
        return redirect("booking_accept_quote", reference=booking.reference)
    if booking.state == Booking.CONFIRMED:
        messages.success(request, _("This booking is paid and confirmed."))
        return redirect("booking_detail", reference=booking.reference)
    if booking.state != Booking.AWAITING_PAYMENT:
        messages.info(request, _("This booking is not waiting for a payment."))
        return redirect("booking_detail", reference=booking.reference)
    tz = booking.clinic.tz
    now = timezone.now()
    expired = bool(booking.payment_due_at and booking.payment_due_at <= now)
    seconds_left = int((booking.payment_due_at - now).total_seconds()) if booking.payment_due_at and not expired \
        else 0
    if_paid = cancellation.refund_due(booking, reasons.PATIENT, now, paid=booking.deposit)
    return render(request, "bookings/checkout.html", {
        "test_payments": bool(getattr(settings, "STRIPE_JS_TEST_DOUBLE", False)),
        "balance": max(0, booking.price - booking.deposit),
        "refund_now": if_paid,
        "refund_steps": cancellation.refund_steps(booking, now),
        "tz": tz,
        "booking": booking,
        "sessions": [{"start": a.start.astimezone(tz), "end": a.end.astimezone(tz)} for a in _sessions(booking)],
        "clinic_zone": booking.clinic.zone_label,
        "expired": expired,
        "seconds_left": seconds_left,
        "minutes_left": (seconds_left + 59) // 60,
        "publishable_key": _publishable_key(),
        "stripe_js": _stripe_js_url(),
        "pay_url": f"/api/v1/bookings/{booking.pk}/payments",
        "done_url": reverse("booking_detail", args=[booking.reference]),
    })


# --------------------------------------------------------------------------------- visa letter


@login_required
@never_cache
def visa_letter(request, reference):
    booking = _my_booking(request, reference)
    if booking.state != Booking.CONFIRMED:
        raise Http404
    profile = PatientProfile.objects.filter(user=request.user).prefetch_related("companions").first()
    if profile is None or not profile.visa_ready:
        return render(request, "bookings/visa_profile_needed.html", {"booking": booking, "profile": profile},
                      status=409)
    from bookings.patients.visa import build_visa_letter  # lazy: fpdf, ~0.3 s to import, for this PDF only

    pdf = build_visa_letter(booking, profile)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="visa-letter-{booking.reference}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def reschedule(request, reference):
    """Move a confirmed booking: pick new dates; they are held first, then swapped in (lifecycle.reschedule)."""
    booking = _my_booking(request, reference)
    offering = booking.offering
    if not lifecycle.can_reschedule(booking):
        messages.info(request, _("Dates can be changed here up to %(days)d days before treatment. Please write to "
                                 "the clinic from the booking page.") % {"days": lifecycle.RESCHEDULE_MIN_DAYS})
        return redirect("booking_detail", reference=booking.reference)
    if request.method == "POST":
        limited = _too_many(request, "hold")
        if limited:
            return limited
        form = SlotChoiceForm(request.POST)
        if not form.is_valid():
            return _slot_page(request, offering, status=400, error=form.first_error(), booking=booking)
        try:
            lifecycle.reschedule(request.user, booking, form.cleaned_data["start"], form.cleaned_data["client_key"])
        except errors.BookingError as exc:
            return _slot_error_page(request, offering, exc, booking=booking)
        messages.success(request, _("Your booking has moved to the new dates. We emailed you the new calendar file."))
        return redirect("booking_detail", reference=booking.reference)
    return _slot_page(request, offering, booking=booking)

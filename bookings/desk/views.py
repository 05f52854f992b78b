"""The clinic desk: server-rendered views for clinic staff, scoped to the clinics they belong to.

Every view takes its clinic, resource, booking or appointment from the URL and answers 404 unless it
belongs to one of the user's clinics; users without any clinic membership get 403. Views stay thin:
state changes go through ``bookings.services`` and ``bookings.engine.calendar``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from bookings import errors
from bookings.engine import availability as av
from bookings.engine import calendar as calendar_service
from bookings.lifecycle import cancellation, reasons, states
from bookings.lifecycle import services as lifecycle
from bookings.lifecycle.forms import CancelForm, MessageForm, RequestTreatmentForm
from bookings.models import (
    Allocation,
    Appointment,
    AvailabilityException,
    Booking,
    PatientProfile,
    Resource,
    Restriction,
)
from bookings.patients import consent, privacy
from bookings.review import services as review
from bookings.trip import extras as trip_extras
from catalog.models import ClinicPage, Offering
from portal import l10n
from portal.net import client_ip

from .forms import (
    BuffersForm,
    DeclineForm,
    ExceptionForm,
    HoursFormSet,
    QuoteForm,
    within_reach,
)

TO_PATIENT = gettext_lazy("Message to the patient")
QUEUE_STATES = [Booking.REQUESTED, Booking.UNDER_REVIEW, Booking.QUOTED]
REVIEWABLE = {Booking.REQUESTED, Booking.UNDER_REVIEW, Booking.QUOTED}
DAY_HIDDEN_BOOKING_STATES = [Booking.CANCELLED, Booking.DECLINED, Booking.EXPIRED, Booking.REFUNDED]
EXTRAS_LISTED = 10  # bookings with extras waiting for an answer, listed on the home and day pages
NO_EXTRAS = {"count": 0, "bookings": [], "more": 0}


# --------------------------------------------------------------------------------- access


def desk_clinics(user):
    """The clinics the user has a membership for (none for anonymous users)."""
    if not getattr(user, "is_authenticated", False):
        return ClinicPage.objects.none()
    return ClinicPage.objects.filter(memberships__user=user).select_related("city").distinct().order_by("title")


def desk_view(view):
    """Login required; 403 without any clinic membership; ``request.desk_clinic_ids`` for scoping."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        ids = set(desk_clinics(request.user).values_list("pk", flat=True))
        if not ids:
            raise PermissionDenied(_("The clinic desk is for clinic staff."))
        request.desk_clinic_ids = ids
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def _clinic(request, clinic_id) -> ClinicPage:
    return get_object_or_404(ClinicPage.objects.select_related("city"), pk=clinic_id,
                             pk__in=request.desk_clinic_ids)


def _resource(request, resource_id) -> Resource:
    return get_object_or_404(Resource.objects.select_related("clinic__city"), pk=resource_id,
                             clinic_id__in=request.desk_clinic_ids)


def _booking(request, booking_id) -> Booking:
    return get_object_or_404(Booking.objects.select_related("user", "clinic__city", "offering__page"),
                             pk=booking_id, clinic_id__in=request.desk_clinic_ids)


def _render(request, template, context, tz, status=200):
    """Render with the clinic's zone active, so every time on the page is the clinic's local time."""
    with timezone.override(tz):
        return render(request, template, context, status=status)


def _local_today(tz) -> date:
    return timezone.now().astimezone(tz).date()


def _parse_day(request, param, tz) -> date:
    raw = (request.GET.get(param) or "").strip()
    if not raw:
        return _local_today(tz)
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        messages.error(request, _("“%(value)s” is not a date (YYYY-MM-DD); showing today.") % {"value": raw[:20]})
        return _local_today(tz)
    # bounded before any arithmetic (the day before, the week's Monday): the calendar's ends overflow
    if not within_reach(day, _local_today(tz)):
        messages.error(request, _("%(value)s is more than two years from today; showing today.")
                       % {"value": day.isoformat()})
        return _local_today(tz)
    return day


def _acknowledged(request) -> set[int]:
    if not request.POST.get("confirm_stranded"):
        return set()
    ids = set()
    for value in request.POST.getlist("acknowledged"):
        try:
            ids.add(int(value))
        except ValueError:
            continue
    return ids


def _warn_acknowledged(request, acknowledged):
    if acknowledged:
        messages.warning(request, _("Saved. The booked sessions you confirmed are outside the opening hours now: "
                                    "contact these patients and move or cancel their bookings."))


# --------------------------------------------------------------------------------- home, day list


@desk_view
def home(request):
    clinics = list(desk_clinics(request.user))
    ids = [c.pk for c in clinics]
    queue = dict(Booking.objects.filter(clinic_id__in=ids, state__in=QUEUE_STATES)
                 .values_list("clinic_id").annotate(n=Count("id")).values_list("clinic_id", "n"))
    extras_waiting = _extras_waiting(ids)
    resources: dict[int, list] = {i: [] for i in ids}
    for resource in Resource.objects.filter(clinic_id__in=ids).order_by("name"):
        resources[resource.clinic_id].append(resource)
    rows = [{"clinic": c, "queue": queue.get(c.pk, 0), "resources": resources[c.pk],
             "today": _local_today(c.tz), "extras": extras_waiting.get(c.pk, NO_EXTRAS)}
            for c in clinics]
    return render(request, "desk/home.html", {"rows": rows})


def _extras_waiting(clinic_ids) -> dict[int, dict]:
    """{clinic id: {"count": extras waiting for the clinic's answer, "bookings": the first bookings with them,
    "more": how many bookings with them are not listed}}."""
    out: dict[int, dict] = {}
    rows = (trip_extras.waiting(clinic_ids)
            .values("booking__clinic_id", "booking_id", "booking__reference", "booking__service_title")
            .annotate(n=Count("id")).order_by("booking__clinic_id", "booking_id"))
    for row in rows:
        entry = out.setdefault(row["booking__clinic_id"], {"count": 0, "bookings": [], "more": 0})
        entry["count"] += row["n"]
        if len(entry["bookings"]) < EXTRAS_LISTED:
            entry["bookings"].append({"pk": row["booking_id"], "reference": row["booking__reference"],
                                      "title": row["booking__service_title"], "n": row["n"]})
        else:
            entry["more"] += 1
    return out


@desk_view
def day_list(request, clinic_id):
    clinic = _clinic(request, clinic_id)
    tz = clinic.tz
    day = _parse_day(request, "date", tz)
    start, end = av.local_day_bounds(day, tz)
    appointments = list(
        Appointment.objects.filter(booking__clinic=clinic, start__gte=start, start__lt=end,
                                   status__in=[Appointment.BOOKED, Appointment.HELD, Appointment.ATTENDED,
                                               Appointment.NO_SHOW])
        .exclude(booking__state__in=DAY_HIDDEN_BOOKING_STATES)
        .select_related("booking__user", "offering__page")
        .prefetch_related("allocations__resource")
        .order_by("start", "id"))
    extras_waiting = _extras_waiting([clinic.pk]).get(clinic.pk, NO_EXTRAS)
    waiting_by_booking = _extras_waiting_by_booking(clinic.pk, {a.booking_id for a in appointments})
    for a in appointments:
        a.resource_names = sorted({al.resource.name for al in a.allocations.all() if al.live})
        a.can_mark = a.status in (Appointment.BOOKED, Appointment.ATTENDED, Appointment.NO_SHOW)
        a.extras_waiting = waiting_by_booking.get(a.booking_id, 0)
    context = {"clinic": clinic, "day": day, "appointments": appointments, "extras_waiting": extras_waiting,
               "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1),
               "is_today": day == _local_today(tz)}
    return _render(request, "desk/day.html", context, tz)


def _extras_waiting_by_booking(clinic_id, booking_ids) -> dict[int, int]:
    """{booking id: its extras waiting for the clinic's answer}."""
    if not booking_ids:
        return {}
    return dict(trip_extras.waiting([clinic_id]).filter(booking_id__in=booking_ids)
                .values_list("booking_id").annotate(n=Count("id")).values_list("booking_id", "n").order_by())


@desk_view
@require_POST
def mark_attendance(request, appointment_id):
    appointment = get_object_or_404(Appointment.objects.select_related("booking__clinic__city"), pk=appointment_id,
                                    booking__clinic_id__in=request.desk_clinic_ids)
    clinic = appointment.booking.clinic
    attended = request.POST.get("attended")
    if attended not in ("1", "0"):
        messages.error(request, _("Choose attended or did not attend."))
    else:
        try:
            lifecycle.mark_attendance(appointment, request.user, attended == "1")
        except errors.BookingError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Attendance saved for %(ref)s.") % {"ref": appointment.booking.reference})
    day = appointment.start.astimezone(clinic.tz).date()
    return redirect(f"{reverse('desk:day', args=[clinic.pk])}?date={day.isoformat()}")


# --------------------------------------------------------------------------------- week calendar


def _hm(moment: datetime, day_end: datetime, tz) -> str:
    return "24:00" if moment == day_end else moment.astimezone(tz).strftime("%H:%M")


@desk_view
def week(request, resource_id):
    resource = _resource(request, resource_id)
    tz = resource.clinic.tz
    now = timezone.now()
    first = _parse_day(request, "start", tz)
    monday = first - timedelta(days=first.weekday())
    sunday = monday + timedelta(days=6)
    week_start, week_end = av.local_day_bounds(monday, tz)[0], av.local_day_bounds(sunday, tz)[1]
    exceptions = list(resource.exceptions.filter(end__gt=week_start - timedelta(days=1),
                                                 start__lt=week_end + timedelta(days=1)).order_by("start"))
    open_ = calendar_service.open_hours(resource.weekly_hours.all(), exceptions, tz,
                                        monday - timedelta(days=1), sunday + timedelta(days=1))
    allocations = list(
        Allocation.objects.blocking(now).filter(resource=resource, start__lt=week_end, end__gt=week_start)
        .select_related("appointment__booking__user", "appointment__offering__page", "appointment__hold__user")
        .order_by("start"))
    days = []
    for i in range(7):
        day = monday + timedelta(days=i)
        d_start, d_end = av.local_day_bounds(day, tz)
        opening = []
        for s, e in open_:
            cs, ce = max(s, d_start), min(e, d_end)
            if cs < ce:
                opening.append(f"{_hm(cs, d_end, tz)}–{_hm(ce, d_end, tz)}")
        day_exceptions = [e for e in exceptions if e.start < d_end and e.end > d_start]
        entries = []
        for al in allocations:
            appt = al.appointment
            if not (d_start <= appt.start < d_end):
                continue
            booking = appt.booking
            user = booking.user if booking else (appt.hold.user if appt.hold else None)
            entries.append({
                "appointment": appt, "booking": booking, "user": user,
                "held": appt.status == Appointment.HELD or al.expires_at is not None,
                "expires_at": al.expires_at, "unit": al.unit,
            })
        days.append({"day": day, "opening": opening, "exceptions": day_exceptions, "entries": entries,
                     "is_today": day == _local_today(tz)})
    context = {"resource": resource, "clinic": resource.clinic, "days": days, "monday": monday, "sunday": sunday,
               "prev_week": monday - timedelta(days=7), "next_week": monday + timedelta(days=7),
               "tz_name": resource.clinic.zone_label}
    return _render(request, "desk/week.html", context, tz)


# --------------------------------------------------------------------------------- hours and exceptions


@desk_view
@require_http_methods(["GET", "POST"])
def hours(request, resource_id):
    resource = _resource(request, resource_id)
    tz = resource.clinic.tz
    stranded = []
    if request.method == "POST":
        formset = HoursFormSet(request.POST, prefix="hours")
        buffers = BuffersForm(request.POST, prefix="buffers")
        if formset.is_valid() and buffers.is_valid():
            acknowledged = _acknowledged(request)
            try:
                calendar_service.set_weekly_hours(
                    resource, formset.rows(), request.user,
                    buffer_before=buffers.cleaned_data["buffer_before_minutes"],
                    buffer_after=buffers.cleaned_data["buffer_after_minutes"], acknowledged=acknowledged)
            except calendar_service.StrandedSessions as exc:
                stranded = exc.appointments
                messages.warning(request, _("These changes would leave booked sessions outside the opening "
                                            "hours. Nothing was saved yet."))
            except errors.BookingError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Weekly hours saved."))
                _warn_acknowledged(request, acknowledged)
                return redirect("desk:week", resource.pk)
        else:
            messages.error(request, _("Please correct the errors below."))
    else:
        initial = [{"weekday": r.weekday, "start": r.start, "end": r.end}
                   for r in calendar_service.current_rows(resource)]
        formset = HoursFormSet(prefix="hours", initial=initial)
        buffers = BuffersForm(prefix="buffers", initial={
            "buffer_before_minutes": resource.buffer_before_minutes,
            "buffer_after_minutes": resource.buffer_after_minutes})
    context = {"resource": resource, "clinic": resource.clinic, "formset": formset, "buffers": buffers,
               "stranded": stranded, "tz_name": resource.clinic.zone_label}
    return _render(request, "desk/hours.html", context, tz)


def _exceptions_page(request, resource, form, stranded=(), status=200):
    tz = resource.clinic.tz
    since = timezone.now() - timedelta(days=30)
    exceptions = resource.exceptions.filter(end__gt=since).select_related("created_by").order_by("start")
    context = {"resource": resource, "clinic": resource.clinic, "form": form, "exceptions": exceptions,
               "stranded": stranded, "tz_name": resource.clinic.zone_label}
    return _render(request, "desk/exceptions.html", context, tz, status=status)


@desk_view
@require_http_methods(["GET", "POST"])
def exceptions(request, resource_id):
    resource = _resource(request, resource_id)
    tz = resource.clinic.tz
    if request.method != "POST":
        return _exceptions_page(request, resource, ExceptionForm(tz=tz))
    form = ExceptionForm(request.POST, tz=tz)
    if not form.is_valid():
        messages.error(request, _("Please correct the errors below."))
        return _exceptions_page(request, resource, form)
    data = form.cleaned_data
    acknowledged = _acknowledged(request)
    try:
        calendar_service.add_exception(resource, data["kind"], data["start"], data["end"], data["reason"],
                                       request.user, acknowledged=acknowledged)
    except calendar_service.StrandedSessions as exc:
        messages.warning(request, _("This closure covers booked sessions. Nothing was saved yet."))
        return _exceptions_page(request, resource, form, exc.appointments)
    except errors.BookingError as exc:
        messages.error(request, exc.message)
        return _exceptions_page(request, resource, form)
    messages.success(request, _("Exception added."))
    _warn_acknowledged(request, acknowledged)
    return redirect("desk:exceptions", resource.pk)


@desk_view
@require_POST
def exception_delete(request, resource_id, exception_id):
    resource = _resource(request, resource_id)
    exception = get_object_or_404(AvailabilityException, pk=exception_id, resource=resource)
    acknowledged = _acknowledged(request)
    try:
        calendar_service.remove_exception(resource, exception, request.user, acknowledged=acknowledged)
    except calendar_service.StrandedSessions as exc:
        context = {"resource": resource, "clinic": resource.clinic, "exception": exception,
                   "stranded": exc.appointments, "tz_name": resource.clinic.zone_label}
        messages.warning(request, _("Booked sessions use these extra hours. Nothing was removed yet."))
        return _render(request, "desk/exception_delete.html", context, resource.clinic.tz)
    except errors.BookingError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Exception removed."))
        _warn_acknowledged(request, acknowledged)
    return redirect("desk:exceptions", resource.pk)


# --------------------------------------------------------------------------------- review queue and bookings


@desk_view
def queue(request, clinic_id):
    clinic = _clinic(request, clinic_id)
    bookings = (Booking.objects.filter(clinic=clinic, state__in=QUEUE_STATES)
                .select_related("user", "offering__page")
                .annotate(record_count=Count("records", distinct=True))
                .order_by("created_at"))
    return _render(request, "desk/queue.html", {"clinic": clinic, "bookings": bookings}, clinic.tz)


def _questionnaire_rows(data):
    """The patient's answers under the questions as the request form asked them, in the staff's language."""
    if not isinstance(data, dict):
        return [(_("Answers"), data)] if data else []
    rows = []
    fields = RequestTreatmentForm.base_fields
    for key, value in data.items():
        field = fields.get(key)
        label = str(field.label) if field is not None else str(key).replace("_", " ").strip().capitalize()
        if isinstance(value, bool):
            value = _("Yes") if value else _("No")
        elif isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = "; ".join(f"{k}: {v}" for k, v in value.items())
        rows.append((label, value))
    return rows


def _quote_initial(booking: Booking) -> dict:
    quote = booking.current_quote()
    today = _local_today(booking.clinic.tz)
    if quote is not None:
        return {"price": Decimal(quote.price) / 100, "deposit": Decimal(quote.deposit) / 100, "included": quote.included,
                "treatment_plan": quote.treatment_plan, "window_start": quote.window_start,
                "window_end": quote.window_end, "valid_until": max(today + timedelta(days=1),
                                                                   quote.valid_until.astimezone(booking.clinic.tz)
                                                                   .date())}
    return {"price": Decimal(booking.price) / 100, "deposit": Decimal(booking.deposit) / 100,
            "included": booking.offering.page.included if booking.offering_id else "",
            "window_start": today + timedelta(days=14), "window_end": today + timedelta(days=45),
            "valid_until": today + timedelta(days=14)}


def booking_restriction(booking):
    return Restriction.objects.filter(booking=booking).first()


def _booking_page(request, booking, *, quote_form=None, decline_form=None, message_form=None, cancel_form=None,
                  open_panel=""):
    tz = booking.clinic.tz
    # health data only with the patient's consent (or a legal obligation after erasure); every view is logged
    may_read = consent.staff_may_read(request.user, booking)
    records = [{"record": r, "url": reverse("record_download", args=[r.id])}
               for r in booking.records.order_by("-uploaded_at")] if may_read else []
    can_cancel = booking.is_live and Booking.CANCELLED in states.TRANSITIONS.get(booking.state, set())
    profile = PatientProfile.objects.filter(user=booking.user).first() if may_read else None
    if may_read:
        ip = client_ip(request)
        if booking.questionnaire or booking.request_note:
            privacy.log_access(request.user, "questionnaire", patient_id=booking.user_id, booking=booking, ip=ip)
        if profile is not None and (profile.family_name or profile.given_names):
            privacy.log_access(request.user, "passport", patient_id=booking.user_id, booking=booking, ip=ip)
    withdrawn = booking.consents.filter(withdrawn_at__isnull=False).order_by("-withdrawn_at").first()
    context = {
        "may_read": may_read,
        "consent_withdrawn_at": withdrawn.withdrawn_at if (withdrawn and not may_read) else None,
        "restriction": booking_restriction(booking),
        "booking": booking, "clinic": booking.clinic, "patient": booking.user,
        "passport_name": " ".join(p for p in (getattr(profile, "family_name", ""), getattr(profile, "given_names", ""))
                                  if p),
        "citizenship": l10n.country_name(profile.citizenship.code) if profile and profile.citizenship else "",
        "language_name": l10n.language_name(booking.language),
        "patient_zone": l10n.zone_label(booking.patient_timezone) if booking.patient_timezone else "",
        "questionnaire": _questionnaire_rows(booking.questionnaire) if may_read else [],
        "records": records,
        "thread": booking.messages.select_related("author"),
        "quotes": booking.quotes.order_by("-version"),
        "events": booking.events.select_related("actor"),
        "extras_waiting": _extras_waiting_by_booking(booking.clinic_id, {booking.pk}).get(booking.pk, 0),
        "appointments": booking.appointments.exclude(status=Appointment.RELEASED).order_by("start"),
        "can_start_review": booking.state == Booking.REQUESTED,
        "can_quote": booking.state in REVIEWABLE and booking.offering.kind != Offering.SECOND_OPINION,
        "can_decline": booking.state in REVIEWABLE,
        "can_cancel": can_cancel,
        "quote_form": quote_form or QuoteForm(initial=_quote_initial(booking), tz=tz, prefix="quote"),
        "decline_form": decline_form or DeclineForm(prefix="decline"),
        "message_form": message_form or MessageForm(prefix="message", label=TO_PATIENT),
        "cancel_form": cancel_form or CancelForm(prefix="cancel", side=reasons.CLINIC_SIDE),
        "open_panel": open_panel,
        "tz_name": booking.clinic.zone_label,
    }
    return _render(request, "desk/booking.html", context, tz)


@desk_view
def booking_detail(request, booking_id):
    return _booking_page(request, _booking(request, booking_id))


@desk_view
def booking_visa_letter(request, booking_id):
    """The visa support letter of a confirmed booking, for the coordinator who sends it to an embassy; logged."""
    from bookings.patients.visa import build_visa_letter  # lazy: fpdf, ~0.3 s to import, for this PDF only

    booking = _booking(request, booking_id)
    profile = PatientProfile.objects.filter(user=booking.user).prefetch_related("companions").first()
    if (booking.state != Booking.CONFIRMED or profile is None or not profile.visa_ready
            or not consent.staff_may_read(request.user, booking)):
        raise Http404()
    pdf = build_visa_letter(booking, profile)
    privacy.log_access(request.user, "visa_letter", patient_id=booking.user_id, booking=booking,
                       ip=client_ip(request), action="download")
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="visa-letter-{booking.reference}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@desk_view
@require_POST
def booking_start_review(request, booking_id):
    booking = _booking(request, booking_id)
    try:
        review.start_review(booking, request.user)
    except errors.BookingError as exc:
        messages.error(request, exc.message)
        return _booking_page(request, booking)
    messages.success(request, _("Review started. The patient has been told."))
    return redirect("desk:booking", booking.pk)


@desk_view
@require_POST
def booking_quote(request, booking_id):
    booking = _booking(request, booking_id)
    form = QuoteForm(request.POST, tz=booking.clinic.tz, prefix="quote")
    if not form.is_valid():
        messages.error(request, _("Please correct the errors in the quote."))
        return _booking_page(request, booking, quote_form=form, open_panel="quote")
    try:
        quote = review.send_quote(booking, request.user, **form.service_kwargs())
    except errors.BookingError as exc:
        messages.error(request, exc.message)
        booking.refresh_from_db()
        return _booking_page(request, booking, quote_form=form, open_panel="quote")
    messages.success(request, _("Quote %(version)d sent to the patient.") % {"version": quote.version})
    return redirect("desk:booking", booking.pk)


@desk_view
@require_POST
def booking_decline(request, booking_id):
    booking = _booking(request, booking_id)
    form = DeclineForm(request.POST, prefix="decline")
    if form.is_valid():
        try:
            review.decline(booking, request.user, form.cleaned_data["reason"])
        except errors.BookingError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The request was declined and the patient told why."))
            return redirect("desk:booking", booking.pk)
    else:
        messages.error(request, _("Please correct the errors below."))
    booking.refresh_from_db()
    return _booking_page(request, booking, decline_form=form, open_panel="decline")


@desk_view
@require_POST
def booking_cancel(request, booking_id):
    booking = _booking(request, booking_id)
    form = CancelForm(request.POST, prefix="cancel", side=reasons.CLINIC_SIDE)
    if not form.is_valid():
        messages.error(request, _("Tick the box to confirm the cancellation."))
        return _booking_page(request, booking, cancel_form=form, open_panel="cancel")
    try:
        reason = form.cleaned_data["reason"]
        booking, refund = cancellation.cancel_booking(booking, request.user, reason)
    except errors.BookingError as exc:
        messages.error(request, exc.message)
        booking.refresh_from_db()
        return _booking_page(request, booking, cancel_form=form, open_panel="cancel")
    messages.success(request, _("The booking was cancelled. %(refund)s") % {"refund": refund.explanation})
    return redirect("desk:booking", booking.pk)


@desk_view
@require_POST
def booking_message(request, booking_id):
    booking = _booking(request, booking_id)
    form = MessageForm(request.POST, prefix="message", label=TO_PATIENT)
    if not form.is_valid():
        messages.error(request, _("Please write a message."))
        return _booking_page(request, booking, message_form=form, open_panel="message")
    lifecycle.post_message(booking, request.user, form.cleaned_data["body"], from_clinic=True)
    messages.success(request, _("Message sent."))
    return redirect(f"{reverse('desk:booking', args=[booking.pk])}#thread")

"""The patient's trip pages under /my/ (extras, the estimate PDF, a visa refusal, the waitlist) and the desk's
decisions (confirming extras and refusal letters). Thin: every change goes through the trip and waitlist services.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from bookings.desk.forms import ExtraDecisionForm
from bookings.desk.views import desk_view
from bookings.engine import waitlist
from bookings.errors import BookingError, http_status
from bookings.models import Booking, BookingExtra, VisaRefusal, WaitlistEntry
from bookings.patients.records import RecordRejected
from bookings.trip import estimate, extras, visa_refusal
from catalog.currency import currency_code
from catalog.models import Offering
from portal.l10n import money


def _my_booking(request, reference) -> Booking:
    return get_object_or_404(Booking.objects.select_related("offering__page", "clinic__city"),
                             reference=reference, user=request.user)


def _detail(booking, anchor="trip"):
    return redirect(reverse("booking_detail", args=[booking.reference]) + f"#{anchor}")


# --------------------------------------------------------------------------------- extras


@login_required
@require_POST
def choose_extras(request, reference):
    booking = _my_booking(request, reference)
    quantities = {}
    for offer in extras.offered(booking.offering):
        raw = request.POST.get(f"extra-{offer.pk}", "0").strip() or "0"
        try:
            quantities[offer.pk] = int(raw)
        except ValueError:
            messages.error(request, _("Please give a whole number."))
            return _detail(booking)
    try:
        extras.choose(booking, request.user, quantities)
    except BookingError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Your extras are saved. The clinic will confirm them."))
    nxt = request.POST.get("next", "")
    if nxt == "checkout":
        return redirect("booking_checkout", reference=booking.reference)
    return _detail(booking)


@login_required
@never_cache
def estimate_pdf(request, reference):
    booking = _my_booking(request, reference)
    est = estimate.for_booking(booking, currency_code(request))
    response = HttpResponse(estimate.pdf(booking, est), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="estimate-{booking.reference}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


# --------------------------------------------------------------------------------- visa refusal


class RefusalForm(forms.Form):
    letter = forms.FileField(label=gettext_lazy("The refusal letter (PDF or a photo)"))
    note = forms.CharField(label=gettext_lazy("Anything the clinic should know"), required=False,
                           widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def visa_refused(request, reference):
    booking = _my_booking(request, reference)
    status = 200
    if request.method == "POST":
        form = RefusalForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                visa_refusal.claim(booking, request.user, form.cleaned_data["letter"], form.cleaned_data["note"])
            except BookingError as exc:
                form.add_error(None, str(exc.message))
            except RecordRejected as exc:
                form.add_error("letter", str(exc.message))
            else:
                messages.success(request, _("The clinic has your refusal letter. Once they confirm it, the booking "
                                            "is cancelled and refunded in full."))
                return _detail(booking)
        status = 400
    else:
        form = RefusalForm()
    return render(request, "trip/visa_refused.html", {
        "booking": booking, "form": form, "waiting": visa_refusal.waiting_claim(booking),
        "can_claim": visa_refusal.can_claim(booking)}, status=status)


# --------------------------------------------------------------------------------- waitlist


class JoinForm(forms.Form):
    window_start = forms.DateField(label=gettext_lazy("Earliest start"), widget=forms.DateInput(attrs={"type": "date"}))
    window_end = forms.DateField(label=gettext_lazy("Latest start"), widget=forms.DateInput(attrs={"type": "date"}))


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def waitlist_join(request, offering_id):
    offering = get_object_or_404(Offering.objects.select_related("clinic__city", "page"), pk=offering_id)
    booking = None
    if request.GET.get("booking") or request.POST.get("booking"):
        booking = _my_booking(request, request.GET.get("booking") or request.POST.get("booking"))
    quote = booking.current_quote() if booking else None
    status = 200
    if request.method == "POST":
        form = JoinForm(request.POST)
        if form.is_valid():
            try:
                entry = waitlist.join(request.user, offering, form.cleaned_data["window_start"],
                                      form.cleaned_data["window_end"], booking=booking)
            except BookingError as exc:
                form.add_error(None, str(exc.message))
                status = http_status(exc)
            else:
                messages.success(request, _("You are on the waitlist. We will email you as soon as a time frees up."))
                return redirect("trip_waitlist_entry", entry_id=entry.pk)
        else:
            status = 400
    else:
        today = timezone.now().astimezone(offering.clinic.tz).date()
        form = JoinForm(initial={"window_start": quote.window_start if quote else today,
                                 "window_end": quote.window_end if quote else today + timedelta(days=30)})
    return render(request, "trip/waitlist_join.html", {"offering": offering, "booking": booking, "form": form,
                                                       "quote": quote}, status=status)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def waitlist_entry(request, entry_id):
    entry = get_object_or_404(WaitlistEntry.objects.select_related("offering__clinic__city", "offering__page",
                                                                   "hold", "booking"),
                              pk=entry_id, user=request.user)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "accept":
                booking = waitlist.accept(entry, request.user)
                return redirect("booking_checkout", reference=booking.reference)
            if action == "decline":
                waitlist.decline(entry, request.user)
                messages.info(request, _("The time goes to the next patient waiting."))
            elif action == "leave":
                waitlist.leave(entry, request.user)
                messages.info(request, _("You have left the waitlist."))
        except BookingError as exc:
            messages.error(request, str(exc.message))
        return redirect("trip_waitlist_entry", entry_id=entry.pk)
    tz = entry.offering.clinic.tz
    sessions = []
    if entry.status == WaitlistEntry.OFFERED and entry.hold_id:
        sessions = [(a.start.astimezone(tz), a.end.astimezone(tz)) for a in entry.hold.appointments.order_by("start")]
    return render(request, "trip/waitlist_entry.html", {
        "entry": entry, "sessions": sessions, "tz": tz, "clinic_zone": entry.offering.clinic.zone_label,
        "position": waitlist.position(entry) if entry.status in WaitlistEntry.OPEN else None,
        "until": entry.hold.expires_at.astimezone(tz) if entry.hold_id else None})


# --------------------------------------------------------------------------------- desk


def _desk_booking(request, booking_id) -> Booking:
    return get_object_or_404(Booking.objects.select_related("clinic", "user"), pk=booking_id,
                             clinic_id__in=request.desk_clinic_ids)


@desk_view
@require_POST
def desk_extra(request, booking_id, extra_id):
    """Confirm an extra, or say the clinic cannot provide it (with the reason the patient reads). Staff of another
    clinic get 404 (the booking is looked up among the user's clinics)."""
    booking = _desk_booking(request, booking_id)
    row = get_object_or_404(BookingExtra, pk=extra_id, booking=booking)
    form = ExtraDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(reverse("desk:booking", args=[booking.pk]) + f"#extra-{row.pk}")
    confirm = form.cleaned_data["decision"] == ExtraDecisionForm.CONFIRM
    before = row.status
    try:
        row = (extras.confirm_extra(row, request.user) if confirm
               else extras.decline_extra(row, request.user, form.cleaned_data["reason"]))
    except BookingError as exc:
        messages.error(request, str(exc.message))
    else:
        if row.status == before:
            messages.info(request, _("This was already recorded; nothing more was done."))
        elif confirm:
            messages.success(request, _("Extra confirmed; the patient is told."))
        elif row.refunded:
            messages.success(request, _("Extra declined; %(amount)s is refunded to the patient, who is told.")
                             % {"amount": money(row.refunded, booking.currency)})
        else:
            messages.success(request, _("Extra declined; the patient is told."))
    return redirect(reverse("desk:booking", args=[booking.pk]) + f"#extra-{row.pk}")


@desk_view
@require_POST
def desk_refusal(request, booking_id, claim_id):
    booking = _desk_booking(request, booking_id)
    row = get_object_or_404(VisaRefusal, pk=claim_id, booking=booking)
    try:
        if request.POST.get("decision") == "confirm":
            _row, quote = visa_refusal.confirm(row, request.user, request.POST.get("note", ""))
            messages.success(request, _("Visa refusal confirmed: the booking is cancelled and refunded."))
        else:
            visa_refusal.reject(row, request.user, request.POST.get("note", ""))
            messages.info(request, _("The letter is not accepted; the patient sees your reason."))
    except BookingError as exc:
        messages.error(request, str(exc.message))
    return redirect(reverse("desk:booking", args=[booking.pk]) + "#trip")

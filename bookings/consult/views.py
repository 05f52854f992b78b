"""The patient's and the desk's pages for consultations, opinions and the DICOM viewer (thin: rules live in
services.py and dicom.py; every file read goes through bookings.patients.records' checked, logged reads)."""

from __future__ import annotations

import json
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bookings import errors
from bookings.consult import dicom, services
from bookings.consult.forms import OpinionForm, OpinionRequestForm
from bookings.consult.models import SecondOpinion
from bookings.desk.views import desk_view
from bookings.models import Booking, MedicalRecord
from bookings.patients import consent
from bookings.patients import records as record_service
from bookings.review import services as review
from catalog.models import Offering
from portal.net import client_ip

log = logging.getLogger("emhana.consult")

PRIVATE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
                   "Content-Security-Policy": "default-src 'none'; sandbox"}


def _my_booking(request, reference) -> Booking:
    return get_object_or_404(Booking.objects.select_related("offering__page", "clinic__city"),
                             reference=reference, user=request.user)


def _desk_booking(request, booking_id) -> Booking:
    return get_object_or_404(Booking.objects.select_related("user", "offering__page", "clinic__city"),
                             pk=booking_id, clinic_id__in=request.desk_clinic_ids)


# --------------------------------------------------------------------------------- joining the call


def _join(request, booking, back):
    state = services.call_state(request.user, booking)
    if state is None:
        raise Http404
    if state.url:
        return redirect(state.url)
    texts = {
        "early": _("The video call link opens %(minutes)d minutes before the consultation.")
        % {"minutes": services.lead_minutes()},
        "ended": _("This consultation has ended."),
        "unpaid": _("The video call link appears once the consultation is paid."),
        "cancelled": _("This consultation is cancelled."),
    }
    messages.info(request, texts.get(state.status, ""))
    return redirect(back)


@login_required
@never_cache
@require_GET
def consultation_join(request, reference):
    booking = _my_booking(request, reference)
    return _join(request, booking, reverse("booking_detail", args=[booking.reference]))


@desk_view
@never_cache
@require_GET
def desk_consultation_join(request, booking_id):
    booking = _desk_booking(request, booking_id)
    return _join(request, booking, reverse("desk:booking", args=[booking.pk]))


# --------------------------------------------------------------------------------- second opinion


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def second_opinion_request(request, offering_id):
    offering = Offering.objects.select_related("clinic__city", "page").filter(
        pk=offering_id, kind=Offering.SECOND_OPINION).first()
    if offering is None or not offering.is_bookable():
        raise Http404
    status = 200
    if request.method == "POST":
        form = OpinionRequestForm(request.POST, request.FILES)
        if form.is_valid():
            booking, error = _create_opinion_request(request, offering, form)
            if booking is not None:
                messages.success(request, _("Your questions and records are sent. The specialist's opinion will "
                                            "appear on this page; we will email you."))
                return redirect("booking_detail", reference=booking.reference)
            form.add_error("records", error)
        status = 400
    else:
        form = OpinionRequestForm()
    return render(request, "consult/opinion_request.html", {"offering": offering, "form": form}, status=status)


def _create_opinion_request(request, offering, form):
    stored = []
    try:
        with transaction.atomic():
            booking = review.request_treatment(
                request.user, offering, note=form.cleaned_data["questions"].strip(),
                questionnaire={"diagnosis": form.cleaned_data["diagnosis"].strip()})
            consent.give(booking, request.user, ip=client_ip(request))  # asked in the form, before anything is shared
            for upload in form.cleaned_data["records"]:
                stored.append(record_service.store_record(request.user, upload, booking=booking))
    except errors.BookingError as exc:
        _discard(stored)
        return None, str(exc.message)
    except record_service.RecordRejected as exc:
        _discard(stored)
        return None, str(exc.message)
    return booking, ""


def _discard(records):
    for record in records:
        try:
            record.file.delete(save=False)
        except Exception:  # noqa: BLE001 - best effort clean-up of a rolled-back upload
            log.warning("could not remove the file of a rolled-back record %s", record.pk)


@login_required
@never_cache
@require_GET
def opinion_pdf(request, reference):
    booking = _my_booking(request, reference)
    opinion = services.opinion_for_patient(booking)
    if opinion is None:
        raise Http404
    from bookings.consult.pdf import build_opinion_pdf  # lazy: fpdf, ~0.3 s to import, for this PDF only

    response = HttpResponse(build_opinion_pdf(opinion), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="opinion-{booking.reference}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@never_cache
@require_POST
def opinion_to_request(request, reference):
    booking = _my_booking(request, reference)
    opinion = services.opinion_for_patient(booking)
    if opinion is None:
        raise Http404
    if opinion.suggested_offering and not opinion.suggested_offering.review_required and not opinion.request_id:
        return redirect("book_offering", offering_id=opinion.suggested_offering_id)
    if not opinion.request_id and request.POST.get("consent") != "on":
        messages.error(request, _("The clinic can only review your request with your consent. Tick the box to "
                                  "agree."))
        return redirect(reverse("booking_detail", args=[booking.reference]) + "#opinion")
    try:
        new = services.request_from_opinion(request.user, booking, ip=client_ip(request))
    except errors.BookingError as exc:
        messages.error(request, str(exc.message))
        return redirect("booking_detail", reference=booking.reference)
    except record_service.RecordRejected as exc:
        messages.error(request, str(exc.message))
        return redirect("booking_detail", reference=booking.reference)
    messages.success(request, _("Your treatment request is sent, with your records and the specialist's opinion."))
    return redirect("booking_detail", reference=new.reference)


@desk_view
@never_cache
@require_http_methods(["GET", "POST"])
def desk_opinion(request, booking_id):
    booking = _desk_booking(request, booking_id)
    existing = SecondOpinion.objects.filter(booking=booking).first()
    if existing is not None and existing.sent:  # a delivered second opinion is completed: say why, not "cannot"
        messages.info(request, _("This opinion was already sent to the patient."))
        return redirect(reverse("desk:booking", args=[booking.pk]) + "#opinion")
    if not services.can_write_opinion(booking):
        messages.info(request, _("An opinion cannot be written on this booking."))
        return redirect("desk:booking", booking_id=booking.pk)
    offerings = services.treatment_offerings(booking)
    status = 200
    if request.method == "POST":
        form = OpinionForm(request.POST, offerings=offerings)
        if form.is_valid():
            data = form.cleaned_data
            send = "send" in request.POST
            try:
                services.save_opinion(booking, request.user, findings=data["findings"].strip(),
                                      recommended_treatment=data["recommended_treatment"].strip(),
                                      treatable_here=data["treatable_here"],
                                      indicative_price=data["indicative_price"],
                                      suggested_offering=data["suggested_offering"], send=send)
            except errors.BookingError as exc:
                form.add_error(None, str(exc.message))
            else:
                messages.success(request, _("The opinion is sent to the patient.") if send
                                 else _("The opinion is saved as a draft."))
                return redirect(reverse("desk:booking", args=[booking.pk]) + "#opinion")
        status = 400
    else:
        initial = {"suggested_offering": offerings[0].pk if offerings else None}
        if existing:
            initial = {"findings": existing.findings, "recommended_treatment": existing.recommended_treatment,
                       "treatable_here": existing.treatable_here, "indicative_price": existing.indicative_price,
                       "suggested_offering": existing.suggested_offering_id}
        form = OpinionForm(initial=initial, offerings=offerings)
    return render(request, "consult/desk_opinion.html", {"booking": booking, "clinic": booking.clinic,
                                                         "form": form, "opinion": existing}, status=status)


# --------------------------------------------------------------------------------- DICOM viewer


def _desk_record(request, record_id) -> MedicalRecord:
    record = MedicalRecord.objects.select_related("booking").filter(
        pk=record_id, booking__clinic_id__in=request.desk_clinic_ids).first()
    if record is None or not dicom.is_study(record):
        raise Http404
    return record


@desk_view
@never_cache
@require_GET
def dicom_viewer(request, record_id):
    record = _desk_record(request, record_id)
    summary = dicom.summary(request.user, record, ip=client_ip(request))
    series = dicom.viewer_series(summary) if record.content_type == dicom.ZIP else []
    try:
        chosen = min(max(int(request.GET.get("series", 0)), 0), max(len(series) - 1, 0))
    except ValueError:
        chosen = 0
    if record.content_type == dicom.DICOM:
        urls = [reverse("desk:dicom_file", args=[record.pk])]
    else:
        urls = [reverse("desk:dicom_member", args=[record.pk, index])
                for index in dicom.viewer_members(summary, chosen)]
    return render(request, "consult/viewer.html", {
        "record": record, "summary": summary, "booking": record.booking, "clinic": record.booking.clinic,
        "urls_json": json.dumps(urls), "series": series, "chosen": chosen})


@desk_view
@never_cache
@require_GET
def dicom_file(request, record_id):
    record = _desk_record(request, record_id)
    if record.content_type != dicom.DICOM:
        raise Http404
    handle = record_service.read_record(request.user, record, ip=client_ip(request), action="view")
    response = StreamingHttpResponse(iter(lambda: handle.read(dicom.MEMBER_CHUNK), b""),
                                     content_type="application/dicom")
    response._resource_closers.append(handle.close)
    response["Content-Length"] = str(record.size)
    for key, value in PRIVATE_HEADERS.items():
        response[key] = value
    return response


@desk_view
@never_cache
@require_GET
def dicom_member(request, record_id, index):
    record = _desk_record(request, record_id)
    size, stream = dicom.open_member(request.user, record, index, ip=client_ip(request))
    response = StreamingHttpResponse(stream, content_type="application/dicom")
    response["Content-Length"] = str(size)
    for key, value in PRIVATE_HEADERS.items():
        response[key] = value
    return response

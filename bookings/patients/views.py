"""The patient's own pages: profile and companions, medical records and their download.

Thin: the checks on files and on who may read them live in ``bookings.patients.records``.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from bookings.models import MedicalRecord, PatientProfile
from bookings.patients import consent
from bookings.patients import records as record_service
from bookings.patients.forms import MAX_COMPANIONS, CompanionFormSet, ProfileForm, RecordUploadForm
from portal.net import client_ip


def _profile_for(user):
    profile = PatientProfile.objects.filter(user=user).first()
    if profile is None:
        language = (get_language() or "en").lower()
        profile = PatientProfile(user=user, preferred_language=language if language in dict(
            PatientProfile._meta.get_field("preferred_language").choices) else "en")
    return profile


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def profile(request):
    profile = _profile_for(request.user)
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=profile)
        formset = CompanionFormSet(request.POST, instance=profile, prefix="companions")
        if form.is_valid() and formset.is_valid():
            with transaction.atomic():
                profile = form.save()
                formset.instance = profile
                formset.save()
            messages.success(request, _("Your details are saved."))
            return redirect("patient_profile")
        messages.error(request, _("Please correct the fields marked below; nothing was saved yet."))
    else:
        form = ProfileForm(instance=profile)
        formset = CompanionFormSet(instance=profile, prefix="companions")
    return render(request, "bookings/profile.html", {
        "form": form, "formset": formset, "profile": profile, "max_companions": MAX_COMPANIONS,
    })


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def records(request):
    if request.method == "POST":
        form = RecordUploadForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            booking = form.cleaned_data["booking"]
            if booking is not None and form.cleaned_data.get("consent"):
                consent.give(booking, request.user, ip=client_ip(request))
            try:
                record = record_service.store_record(
                    request.user, form.cleaned_data["file"], booking=form.cleaned_data["booking"],
                    description=form.cleaned_data["description"])
            except record_service.RecordRejected as exc:
                form.add_error("file", exc.message)
            else:
                messages.success(request, _("“%(name)s” is uploaded.") % {"name": record.original_name})
                return redirect("patient_records")
    else:
        form = RecordUploadForm(user=request.user)
    own = (MedicalRecord.objects.filter(owner=request.user).select_related("booking")
           .annotate(clinic_reads=Count("accesses", filter=~Q(accesses__user=request.user))))
    return render(request, "bookings/records.html", {"form": form, "records": own})


@login_required
@require_GET
def record_download(request, record_id):
    record = MedicalRecord.objects.select_related("booking").filter(pk=record_id).first()
    if record is None:
        raise Http404()
    if record_service.can_read(request.user, record) and record_service.staff_mfa_missing(request.user, record):
        messages.warning(request, _("Please set up two-factor authentication to use the staff pages."))
        return redirect("mfa_activate_totp")
    handle = record_service.read_record(request.user, record, ip=client_ip(request))
    # Named and typed from what the file is (sniffed at upload), not from what the uploader called it.
    response = FileResponse(handle, as_attachment=True, filename=record_service.download_name(record),
                            content_type=record_service.download_content_type(record))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response

"""The patient's privacy page (/my/privacy/): who opened my data, consent per booking, export, delete my account."""

from __future__ import annotations

from functools import wraps

from allauth.account.internal.flows.reauthentication import did_recently_reauthenticate
from allauth.core.exceptions import ReauthenticationRequired
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bookings.models import Booking, Consent, DataExport
from bookings.patients import consent as consent_service
from bookings.patients import export as export_service
from bookings.patients import privacy
from portal.net import client_ip


@login_required
@never_cache
@require_GET
def privacy_page(request):
    user = request.user
    bookings = list(Booking.objects.filter(user=user).select_related("clinic").order_by("-created_at"))
    live = {c.booking_id: c for c in Consent.objects.filter(user=user, withdrawn_at__isnull=True)}
    rows = [{"booking": b, "consent": live.get(b.pk), "text": consent_service.text(b.clinic.title)} for b in bookings]
    return render(request, "bookings/privacy.html", {
        "accesses": privacy.accesses_for(user)[:500],
        "consent_rows": rows,
        "exports": DataExport.objects.filter(user=user, expires_at__gt=timezone.now()) | DataExport.objects.filter(
            user=user, status=DataExport.PENDING),
        "now": timezone.now(),
    })


@login_required
@require_POST
def consent_change(request, reference):
    booking = get_object_or_404(Booking.objects.select_related("clinic"), reference=reference, user=request.user)
    action = request.POST.get("action")
    if action == "give":
        if request.POST.get("agree") != "1":
            messages.error(request, _("Tick the box to agree, or leave the sharing off."))
        else:
            consent_service.give(booking, request.user, ip=client_ip(request))
            messages.success(request, _("The clinic can now see the health data of this booking."))
    elif action == "withdraw":
        if consent_service.withdraw(booking, request.user):
            messages.success(request, _("Consent withdrawn: from now on the clinic no longer sees the health data "
                                        "of this booking."))
    next_url = request.POST.get("next") or ""
    if next_url == "booking":
        return redirect("booking_detail", reference=booking.reference)
    return redirect("patient_privacy")


@login_required
@require_POST
def export_request(request):
    export_service.request_export(request.user)
    messages.success(request, _("We are preparing your data. You will get an email with the download link."))
    return redirect("patient_privacy")


@login_required
@never_cache
@require_GET
def export_download(request, export_id):
    export = DataExport.objects.filter(pk=export_id, user=request.user, status=DataExport.READY).first()
    if export is None or export.expires_at is None or export.expires_at <= timezone.now() or not export.file.name:
        raise Http404()
    response = FileResponse(export.file.open("rb"), as_attachment=True,
                            filename=f"emhana-data-{timezone.now():%Y%m%d}.zip", content_type="application/zip")
    response["Cache-Control"] = "private, no-store"
    return response


def recently_reauthenticated(view):
    """allauth's re-authentication flow (password, or TOTP/passkey) unless the patient re-authenticated in the
    last ACCOUNT_REAUTHENTICATION_TIMEOUT seconds: a signed-in session alone cannot delete the account."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not did_recently_reauthenticate(request):
            raise ReauthenticationRequired()  # allauth's middleware sends them to re-authenticate, then back
        return view(request, *args, **kwargs)

    return wrapper


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
@recently_reauthenticated
def erase(request):
    retained = list(privacy.retained_bookings(request.user).select_related("clinic"))
    if request.method == "POST":
        if request.POST.get("confirm") != request.user.email:
            messages.error(request, _("Type your email address exactly to confirm."))
        else:
            user = request.user
            logout(request)
            privacy.erase_account(user)
            return render(request, "bookings/erased.html", {"retained": len(retained)})
    return render(request, "bookings/erase.html", {"retained": retained, "reason": privacy.legal_reason()})

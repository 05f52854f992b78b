"""Staff sessions: an idle timeout, an absolute timeout, and re-authentication before patients' data.

For staff members (clinic staff, editors, admins; ``portal.staff.is_staff_member``) only — patients keep
Django's normal sessions:

* idle: no request for ``STAFF_SESSION_IDLE_SECONDS`` (default 30 min) → signed out;
* absolute: ``STAFF_SESSION_MAX_SECONDS`` (default 10 h) after sign-in → signed out, whatever the activity;
* before a page that shows a patient's health data (a record, the desk's booking page with the questionnaire,
  the DICOM viewer) when the last authentication is older than ``STAFF_REAUTH_SECONDS`` (default 15 min): sent
  through allauth's re-authentication flow (password, or TOTP/passkey with MFA), then back to the page.

The time of the last authentication is allauth's own record (``get_authentication_records``: sign-in or
re-authentication); a session without one (signed in before this existed) counts from when this middleware first
saw it.
"""

from __future__ import annotations

import re
import time

from allauth.account.adapter import get_adapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.account.internal.flows.reauthentication import suspend_request
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from portal.staff import is_staff_member

STARTED, SEEN, IS_STAFF = "staff_session_started", "staff_session_seen", "staff_session_is_staff"
# the pages that show a patient's health data to staff (paths outside the language prefix or after it)
PATIENT_DATA_PATHS = [
    re.compile(r"^(/[a-z-]+)?/my/records/[0-9a-f-]{36}/$"),
    re.compile(r"^/desk/booking/\d+/$"),
    re.compile(r"^/desk/booking/\d+/visa-letter\.pdf$"),
    re.compile(r"^/desk/records/"),
]


def _is_staff(user) -> bool:
    return is_staff_member(user)


def last_authenticated_at(request) -> float:
    records = get_authentication_records(request, request.user) or []
    times = [r.get("at") for r in records if r.get("at")]
    started = request.session.get(STARTED)
    if times:
        return max(times)
    return started or 0.0


def reauthentication_due(request, now: float | None = None) -> bool:
    now = now or time.time()
    return now - last_authenticated_at(request) > settings.STAFF_REAUTH_SECONDS


def _signed_in(sender, request, user, **kwargs):
    """At sign-in: note whether the account is staff and start the clocks, so requests need no query for it."""
    session = getattr(request, "session", None)
    if session is None:
        return
    now = time.time()
    staff = _is_staff(user)
    session[IS_STAFF] = (user.pk, staff)
    if staff:
        session[STARTED] = now
        session[SEEN] = now


def connect():
    user_logged_in.connect(_signed_in, dispatch_uid="emhana-staff-session")


class StaffSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        session = request.session
        # whether the account is staff is decided once per session (no queries on every request)
        staff = session.get(IS_STAFF)
        if staff is None or staff[0] != user.pk:
            staff = session[IS_STAFF] = (user.pk, _is_staff(user))
        if not staff[1]:
            return self.get_response(request)
        now = time.time()
        started = session.get(STARTED)
        seen = session.get(SEEN)
        if started is None:
            started = session[STARTED] = now
        expired = (seen is not None and now - seen > settings.STAFF_SESSION_IDLE_SECONDS) or (
            now - started > settings.STAFF_SESSION_MAX_SECONDS)
        if expired:
            logout(request)
            messages.info(request, _("For the safety of patients' data you were signed out after a time. Please sign "
                                     "in again."))
            return redirect(f"{reverse('account_login')}?{urlencode({'next': request.get_full_path()})}")
        if seen is None or now - seen > 30:  # written at most twice a minute: no session save on every request
            session[SEEN] = now
        if (request.method == "GET" and any(p.match(request.path) for p in PATIENT_DATA_PATHS)
                and reauthentication_due(request, now)):
            methods = get_adapter().get_reauthentication_methods(user)
            if methods:
                messages.info(request, _("Please confirm it is you before opening a patient's data."))
                return suspend_request(request, methods[0]["url"])
        return self.get_response(request)

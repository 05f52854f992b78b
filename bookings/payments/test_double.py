"""Test-only routes behind static/js/stripe-test-double.js (a stand-in for Stripe.js against localstripe).

portal/urls.py includes these under /stripe-test/ only when settings.STRIPE_JS_TEST_DOUBLE is true, and each
view refuses (404) unless settings.STRIPE_API_BASE points at localstripe: raw card numbers never go to Stripe.
They stand in for Stripe's own endpoints, which our pages do not authenticate to either, so they carry no CSRF
token and change nothing in our database.
"""

from __future__ import annotations

import json
import logging
import re

from django.conf import settings
from django.http import Http404, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bookings.payments import PaymentError, ProviderUnavailable, get_provider

log = logging.getLogger("emhana.payments")

CARD_NUMBER = re.compile(r"^\d{12,19}$")
CLIENT_SECRET = re.compile(r"^(pi_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$")


def _enabled():
    if not getattr(settings, "STRIPE_JS_TEST_DOUBLE", False) or not getattr(settings, "STRIPE_API_BASE", None):
        raise Http404


def _body(request) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _error(message, status):
    return JsonResponse({"error": {"message": message}}, status=status)


@csrf_exempt
@never_cache
@require_POST
def payment_method(request):
    """{number} -> {id: pm_...}, made with the secret key on localstripe (its API refuses publishable keys)."""
    _enabled()
    number = re.sub(r"\s+", "", str(_body(request).get("number", "")))
    if not CARD_NUMBER.match(number):
        return _error("Your card number is incomplete.", 400)
    try:
        pm = get_provider().create_test_payment_method(number)
    except ProviderUnavailable:
        return _error("The payment service is not answering.", 503)
    except PaymentError as exc:
        log.info("test double: payment method refused: %s", getattr(exc, "code", ""))
        return _error("Your card number is invalid.", 402)
    return JsonResponse({"id": pm, "object": "payment_method"})


@csrf_exempt
@never_cache
@require_POST
def authenticate(request):
    """{client_secret, success} -> the intent after the 3-D Secure step: {id, status}."""
    _enabled()
    data = _body(request)
    secret = str(data.get("client_secret", ""))
    match = CLIENT_SECRET.match(secret)
    if not match:
        return _error("Invalid client secret.", 400)
    success = data.get("success", True) not in (False, "false", "0", 0)
    try:
        result = get_provider().authenticate_3ds(match.group(1), secret, success=success)
    except ProviderUnavailable:
        return _error("The payment service is not answering.", 503)
    except PaymentError:
        return _error("The security check could not be completed.", 402)
    return JsonResponse({"id": result.intent_id, "object": "payment_intent", "status": result.status})


urlpatterns = [
    path("payment-method/", payment_method, name="stripe_test_payment_method"),
    path("authenticate/", authenticate, name="stripe_test_authenticate"),
]

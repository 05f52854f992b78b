from django.db import OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .payments import ProviderUnavailable
from .payments_service import handle_webhook


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Signature checked on the raw body; 503 on a lock timeout or provider outage so Stripe retries."""
    try:
        status, note = handle_webhook(request.body, request.headers.get("Stripe-Signature", ""))
    except (OperationalError, ProviderUnavailable):
        return HttpResponse("busy", status=503, content_type="text/plain")
    return HttpResponse(note, status=status, content_type="text/plain")

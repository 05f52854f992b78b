"""What the sign-up and sign-in pages show about a time an anonymous visitor chose (views._signup_to_keep)."""

from urllib.parse import parse_qs, urlsplit

from django.urls import Resolver404, resolve

from bookings.lifecycle.forms import SlotChoiceForm
from catalog.models import Offering
from portal import l10n


def booking_intent(request):
    nxt = request.GET.get("next") or ""
    if "/book/" not in nxt or "/accounts/" not in request.path:
        return {}
    parts = urlsplit(nxt)
    try:
        match = resolve(parts.path)
        start = SlotChoiceForm.parse_start(parse_qs(parts.query).get("start", [""])[0])
    except (Resolver404, ValueError, OverflowError):
        return {}
    if match.url_name != "book_offering":
        return {}
    offering = Offering.objects.select_related("page", "clinic").filter(pk=match.kwargs.get("offering_id")).first()
    if offering is None:
        return {}
    return {"booking_intent": {"title": offering.page.title, "clinic": offering.clinic.title,
                               "when": l10n.format_when(start, offering.clinic.tz)}}

"""Domain errors: each carries a stable code (and a translated message), never an HTTP status.

How a code is answered over HTTP is one table at the end of this module (``HTTP_STATUS``), read through
``http_status(exc)`` by the API (bookings/api.py) and by the pages (bookings/lifecycle/views.py, desk views) alike.
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

log = logging.getLogger("emhana.bookings")




class BookingError(Exception):
    """A refusal the user can act on; ``message`` is translated, ``code`` is stable for the API."""

    def __init__(self, message, code="invalid"):
        super().__init__(str(message))
        self.message = message
        self.code = code


class SlotTaken(BookingError):
    def __init__(self, alternatives=(), message=None):
        super().__init__(message or _("This time was just taken by someone else. Please choose another."), "taken")
        self.alternatives = list(alternatives)


class Busy(BookingError):
    def __init__(self):
        super().__init__(_("We are very busy right now. Please try again in a moment; nothing was lost."), "busy")


class InvalidTransition(BookingError):
    """A state change the booking's current state does not allow (code ``invalid_state``)."""


# How each code is answered over HTTP, for the API and the pages alike; a code not listed is a 400.
HTTP_STATUS: dict[str, int] = {
    # the current state (of the slot, the booking, the calendar) does not allow it: try something else
    "taken": 409,
    "invalid_state": 409,
    "stranded": 409,
    # the other side's right: a patient giving the clinic's cancellation reason
    "reason_not_allowed": 403,
    # nothing was refused for good: come back in a moment
    "busy": 503,
    "provider_unavailable": 503,
    # the payment provider refused the card (PaymentFailed: its code is the provider's decline code)
    "payment_failed": 402,
}
# Families whose code is open-ended, by class name (this module cannot import the payment services).
FAMILY_STATUS: dict[str, int] = {"PaymentFailed": 402, "ProviderDown": 503, "StrandedSessions": 409,
                                 "SlotTaken": 409, "Busy": 503, "InvalidTransition": 409}


def http_status(exc: BookingError) -> int:
    """The HTTP status for a domain error: by its code, else by its family (class), else 400."""
    if exc.code in HTTP_STATUS:
        return HTTP_STATUS[exc.code]
    for cls in type(exc).__mro__:
        if cls.__name__ in FAMILY_STATUS:
            return FAMILY_STATUS[cls.__name__]
    return 400

"""Domain errors: each carries a stable code (and a translated message), never an HTTP status.

The API maps codes to statuses in one table (bookings.api), pages in another (bookings.lifecycle.views).
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

log = logging.getLogger("emhana.bookings")




class BookingError(Exception):
    """A refusal the user can act on; ``message`` is translated, ``code`` is stable for the API."""

    status = 400

    def __init__(self, message, code="invalid"):
        super().__init__(str(message))
        self.message = message
        self.code = code


class SlotTaken(BookingError):
    status = 409

    def __init__(self, alternatives=(), message=None):
        super().__init__(message or _("This time was just taken by someone else. Please choose another."), "taken")
        self.alternatives = list(alternatives)


class Busy(BookingError):
    status = 503

    def __init__(self):
        super().__init__(_("We are very busy right now. Please try again in a moment; nothing was lost."), "busy")


class InvalidTransition(BookingError):
    status = 409



"""A booking's states and the one way to change them: checked, logged and announced.
"""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

from bookings.errors import InvalidTransition
from bookings.lifecycle.models import TRANSITIONS  # noqa: F401  (the table lives beside Booking)
from bookings.models import (
    Booking,
    BookingEvent,
)
from bookings.notifications.tasks import notify_on_commit
from catalog.models import Offering

log = logging.getLogger("emhana.bookings")


# Moves that only some kinds of offering make, on top of TRANSITIONS (which holds for every booking):
# (from, to) -> the offering kinds that may make it. A second opinion's path is requested → under review →
# completed when the clinician's opinion is delivered (bookings.consult.services.deliver_opinion); a treatment
# under review is never completed.
KIND_TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (Booking.UNDER_REVIEW, Booking.COMPLETED): frozenset({Offering.SECOND_OPINION}),
}


def allowed(booking: Booking, to_state: str) -> bool:
    """May ``booking`` move to ``to_state``: the table, or a move its offering's kind makes (read only then)."""
    if to_state in TRANSITIONS.get(booking.state, set()):
        return True
    kinds = KIND_TRANSITIONS.get((booking.state, to_state))
    return bool(kinds) and booking.offering.kind in kinds


def transition(booking: Booking, to_state: str, actor=None, note: str = "", notify: str | None = None) -> Booking:
    """Move a booking to ``to_state`` if allowed, logging who, when and why. Caller holds the row lock.

    The patient is emailed about the new state (or about ``notify``, when the change means something else
    to them, e.g. a quote reopened after its hold ran out)."""
    if not allowed(booking, to_state):
        raise InvalidTransition(
            _("This booking is %(state)s and cannot become %(to)s.")
            % {"state": booking.get_state_display(), "to": dict(Booking.STATE_CHOICES)[to_state]},
            code="invalid_state",
        )
    from_state = booking.state
    booking.state = to_state
    booking.save(update_fields=["state", "updated_at"])
    event = BookingEvent.objects.create(booking=booking, from_state=from_state, to_state=to_state,
                                        actor=actor if getattr(actor, "is_authenticated", False) else None,
                                        note=note)
    log.info("booking %s: %s -> %s (%s)", booking.reference, from_state, to_state, note)
    kind = notify or to_state
    notify_on_commit(booking, kind, f"booking:{booking.pk}:{kind}:{event.pk}")
    return booking


def locked(booking: Booking) -> Booking:
    return Booking.objects.select_for_update().select_related("offering__clinic__city", "offering__page").get(
        pk=booking.pk)



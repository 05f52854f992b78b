"""The one table of cancellation reasons: who may give each, what it is called, and whether it refunds in full.

``Booking.can_cancel(by, reason)`` asks it; the patient's and the clinic's cancel forms, both API operations and
``cancellation.cancel_booking`` all go through that method, so a patient can never give the clinic's reason (which
would refund in full) by any door.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

PATIENT_SIDE, CLINIC_SIDE = "patient", "clinic"
PATIENT, CLINIC_CANCELLED, VISA_REFUSED, UNFIT_ON_ARRIVAL = "patient", "clinic_cancelled", "visa_refused", "unfit"


@dataclass(frozen=True)
class Reason:
    code: str
    by: str  # PATIENT_SIDE or CLINIC_SIDE: the only side that may give it
    label: object  # how the booking's history and the refund explanation name it
    choice: object  # the option in that side's cancel form
    full_refund: bool


REASONS: dict[str, Reason] = {r.code: r for r in (
    Reason(PATIENT, PATIENT_SIDE, _("I cancel"), _("I cancel"), full_refund=False),
    Reason(VISA_REFUSED, PATIENT_SIDE, _("My visa was refused"), _("My visa was refused"), full_refund=True),
    Reason(CLINIC_CANCELLED, CLINIC_SIDE, _("The clinic cancelled"),
           _("The clinic cannot provide the treatment"), full_refund=True),
    Reason(UNFIT_ON_ARRIVAL, CLINIC_SIDE, _("The clinician found the patient unfit for treatment"),
           _("The clinician found the patient unfit for treatment on arrival"), full_refund=True),
)}


def reasons_for(side: str) -> list[str]:
    """The reason codes ``side`` may give, in the table's order."""
    return [code for code, reason in REASONS.items() if reason.by == side]


def choices_for(side: str) -> list[tuple[str, object]]:
    return [(code, REASONS[code].choice) for code in reasons_for(side)]

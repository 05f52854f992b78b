"""Entry rules by citizenship (reviewed data in ``data/entry_rules.json``) against the whole stay of a treatment.

The stay is the course's calendar span (from the booked sessions when there are any, otherwise from the
offering's spacing), with the day before the first session for arriving, and never shorter than the offering's
typical stay (which includes recovery). It is compared with what the patient's citizenship allows without a visa:
the shorter of the days per entry and the days in any 180.

A rule we could not verify never tells a patient that no visa is needed: they are told to check with the
consulate. The verdict points to the invitation (visa support) letter, which the booking page offers once paid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from django.utils.translation import gettext as _

from bookings.models import Appointment, PatientProfile
from portal.l10n import country_name

RULES_FILE = Path(__file__).parent / "data" / "entry_rules.json"

VISA_FREE, VISA_NEEDED, CHECK, NO_CITIZENSHIP, HOME = "visa_free", "visa_needed", "check", "no_citizenship", "home"


@lru_cache(maxsize=1)
def rules() -> dict:
    with RULES_FILE.open(encoding="utf-8") as fh:
        return json.load(fh)


def rule_for(country: str) -> dict | None:
    return rules()["countries"].get((country or "").upper())


def reviewed_on() -> date:
    return date.fromisoformat(rules()["reviewed_on"])


def unverified_countries() -> list[str]:
    return sorted(code for code, rule in rules()["countries"].items() if not rule.get("verified"))


def allowance(rule: dict | None) -> int | None:
    """Days a citizen may stay on one visa-free trip: the shorter of per entry and per 180 days."""
    if not rule or not rule.get("visa_free"):
        return None
    limits = [d for d in (rule.get("per_entry_days"), rule.get("per_180_days")) if d]
    return min(limits) if limits else None


def course_span_days(offering, sessions=None) -> int:
    """Calendar days from the first to the last session (inclusive), in the clinic's zone."""
    if sessions:
        tz = offering.clinic.tz
        first = min(s[0] for s in sessions).astimezone(tz).date()
        last = max(s[1] for s in sessions).astimezone(tz).date()
        return (last - first).days + 1
    n = max(1, offering.sessions or 1)
    if offering.spacing == offering.DAYS and offering.spacing_offsets:
        return int(offering.spacing_offsets[-1]) + 1
    if offering.spacing == offering.CONSECUTIVE:
        # starting on a Monday, five sessions a week
        return (n - 1) // 5 * 7 + (n - 1) % 5 + 1
    return n


def expected_stay_days(offering, sessions=None) -> int:
    """The whole stay: arrival the day before the first session, the course, and recovery (the typical stay)."""
    return max(offering.stay_days or 1, course_span_days(offering, sessions) + 1)


def booking_sessions(booking) -> list[tuple]:
    return [(a.start, a.end) for a in booking.appointments.exclude(
        status__in=[Appointment.RELEASED, Appointment.CANCELLED])]


@dataclass(frozen=True)
class StayVerdict:
    status: str
    country: str
    country_name: str
    stay_days: int
    allowed_days: int | None
    verified: bool
    registration_free_days: int | None
    message: str
    registration: str

    @property
    def visa_needed(self) -> bool:
        return self.status == VISA_NEEDED

    @property
    def warn(self) -> bool:
        return self.status in (VISA_NEEDED, CHECK, NO_CITIZENSHIP)

    @property
    def staff_message(self) -> str:
        """The same verdict for the clinic's coordinator, about the patient (the patient's ``message`` says "you")."""
        days = {"days": self.stay_days, "country": self.country_name, "allowed": self.allowed_days or 0}
        if self.status == NO_CITIZENSHIP:
            return _("Stay of about %(days)d days. The patient has not given a citizenship yet, so whether they "
                     "need a visa is not known.") % days
        if self.status == HOME:
            return ""
        if self.status == CHECK:
            return _("Stay of about %(days)d days. Entry rules for citizens of %(country)s are not verified: the "
                     "patient was asked to check with the consulate.") % days
        if self.status == VISA_NEEDED:
            return _("Stay of about %(days)d days: a citizen of %(country)s needs a visa. The patient needs the "
                     "invitation letter once the deposit is paid.") % days
        return _("Stay of about %(days)d days: no visa needed for a citizen of %(country)s (up to %(allowed)d "
                 "days).") % days


def citizenship_of(user) -> str:
    if not getattr(user, "is_authenticated", False):
        return ""
    profile = PatientProfile.objects.filter(user=user).only("citizenship").first()
    return str(getattr(profile, "citizenship", "") or "")


def verdict(country: str, stay_days: int) -> StayVerdict:
    """Whether a citizen of ``country`` needs a visa for a stay of ``stay_days`` days in Kazakhstan."""
    country = (country or "").upper()
    name = country_name(country) if country else ""
    rule = rule_for(country)
    letter = _("The clinic's invitation (visa support) letter is on your booking page once the deposit is paid.")
    common = {"country": country, "country_name": name, "stay_days": stay_days}
    if not country:
        return StayVerdict(NO_CITIZENSHIP, allowed_days=None, verified=False, registration_free_days=None,
                           message=_("Your stay will be about %(days)d days. Add your citizenship to your profile "
                                     "to see whether you need a visa.") % {"days": stay_days},
                           registration="", **common)
    if country == rules().get("destination", "KZ"):
        return StayVerdict(HOME, allowed_days=None, verified=True, registration_free_days=None, message="",
                           registration="", **common)
    allowed = allowance(rule)
    verified = bool(rule and rule.get("verified"))
    reg_days = rule.get("registration_free_days") if rule else None
    if reg_days:
        registration = _("Citizens of %(country)s need no registration for the first %(free)d days; for a longer "
                         "stay your hotel or the clinic registers you.") % {"country": name, "free": reg_days}
    elif rule:
        registration = _("Your hotel or the clinic registers your stay with the migration service; keep your "
                         "passport and migration card with you.")
    else:
        registration = ""
    if rule is None or (not verified and (allowed is None or stay_days <= allowed)):
        return StayVerdict(CHECK, allowed_days=allowed, verified=False, registration_free_days=reg_days,
                           message=_("Your stay will be about %(days)d days. We could not verify the entry rules "
                                     "for citizens of %(country)s: please check with Kazakhstan's consulate "
                                     "before you pay. %(letter)s") % {"days": stay_days, "country": name,
                                                                      "letter": letter},
                           registration=registration, **common)
    if allowed is None:
        return StayVerdict(VISA_NEEDED, allowed_days=None, verified=verified, registration_free_days=reg_days,
                           message=_("Citizens of %(country)s need a visa for Kazakhstan. Your stay will be about "
                                     "%(days)d days. %(letter)s") % {"country": name, "days": stay_days,
                                                                     "letter": letter},
                           registration=registration, **common)
    if stay_days > allowed:
        return StayVerdict(VISA_NEEDED, allowed_days=allowed, verified=verified, registration_free_days=reg_days,
                           message=_("You need a visa: your stay of about %(days)d days is longer than the "
                                     "%(allowed)d days citizens of %(country)s may stay without one. Apply in "
                                     "good time. %(letter)s") % {"days": stay_days, "allowed": allowed,
                                                                 "country": name, "letter": letter},
                           registration=registration, **common)
    return StayVerdict(VISA_FREE, allowed_days=allowed, verified=True, registration_free_days=reg_days,
                       message=_("No visa needed: your stay of about %(days)d days is within the %(allowed)d days "
                                 "citizens of %(country)s may stay without one.") % {
                           "days": stay_days, "allowed": allowed, "country": name},
                       registration=registration, **common)


def for_booking(booking) -> StayVerdict:
    stay = expected_stay_days(booking.offering, booking_sessions(booking))
    return verdict(citizenship_of(booking.user), stay)


def for_offering(offering, user, sessions=None) -> StayVerdict:
    return verdict(citizenship_of(user), expected_stay_days(offering, sessions))

"""Forms of the clinic desk. Amounts are typed in tenge and stored in minor units (tiyn)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bookings.engine.calendar import MAX_BUFFER_MINUTES
from bookings.models import AvailabilityException, WeeklyHours

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
# Every date staff type is kept within about two years of today before any arithmetic on it: the ends of the
# calendar (0001-01-01, 9999-12-31) overflowed (TRAPS.md).
REACH = timedelta(days=731)
FAR_DATE = _("Choose a date within two years of today.")


def within_reach(day: date, today: date | None = None) -> bool:
    """True when ``day`` is at most about two years before or after today (compared as dates)."""
    today = today or timezone.localdate()
    return today - REACH <= day <= today + REACH


def near_date(value):
    """A form field's value, refused (a form error, not a 500) when its date is too far from today."""
    if value is None:
        return value
    day = value.date() if isinstance(value, datetime) else value
    if not within_reach(day):
        raise forms.ValidationError(FAR_DATE, code="far_date")
    return value


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%H:%M")


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format=DATETIME_LOCAL)


class HoursRowForm(forms.Form):
    weekday = forms.TypedChoiceField(label=_("Day"), choices=WeeklyHours.WEEKDAYS, coerce=int)
    start = forms.TimeField(label=_("From"), widget=TimeInput())
    end = forms.TimeField(label=_("Until"), widget=TimeInput())

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and end <= start:
            raise forms.ValidationError(_("The closing time must be after the opening time."))
        return data


class BaseHoursFormSet(forms.BaseFormSet):
    def rows(self):
        """The filled-in, not deleted rows as (weekday, start, end)."""
        out = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            out.append((form.cleaned_data["weekday"], form.cleaned_data["start"], form.cleaned_data["end"]))
        return out


HoursFormSet = forms.formset_factory(HoursRowForm, formset=BaseHoursFormSet, extra=3, can_delete=True,
                                     max_num=70, validate_max=True)


class BuffersForm(forms.Form):
    buffer_before_minutes = forms.IntegerField(label=_("Buffer before each session (minutes)"), min_value=0,
                                               max_value=MAX_BUFFER_MINUTES)
    buffer_after_minutes = forms.IntegerField(label=_("Buffer after each session (minutes)"), min_value=0,
                                              max_value=MAX_BUFFER_MINUTES)


class ZoneAwareForm(forms.Form):
    """Reads date-times typed in the clinic's wall-clock time (``tz``), not the server's zone."""

    def __init__(self, *args, tz=None, **kwargs):
        self.tz = tz
        super().__init__(*args, **kwargs)

    def full_clean(self):
        if self.tz is None:
            return super().full_clean()
        with timezone.override(self.tz):
            return super().full_clean()


class ExceptionForm(ZoneAwareForm):
    kind = forms.ChoiceField(label=_("Kind"), choices=AvailabilityException.KIND_CHOICES,
                             initial=AvailabilityException.CLOSED)
    start = forms.DateTimeField(label=_("From"), widget=DateTimeLocalInput(),
                                input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
                                help_text=_("In the clinic's local time."))
    end = forms.DateTimeField(label=_("Until"), widget=DateTimeLocalInput(),
                              input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
                              help_text=_("For a whole day, from 00:00 of that day until 00:00 of the next."))
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False,
                             help_text=_("For example: scheduled maintenance, public holiday."))

    def clean_start(self):
        return near_date(self.cleaned_data.get("start"))

    def clean_end(self):
        return near_date(self.cleaned_data.get("end"))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and end <= start:
            self.add_error("end", _("The end must be after the start."))
        return data


def to_minor(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


class QuoteForm(ZoneAwareForm):
    price = forms.DecimalField(label=_("Price (tenge)"), min_value=Decimal("0.01"), max_digits=14,
                               decimal_places=2)
    deposit = forms.DecimalField(label=_("Deposit (tenge)"), min_value=Decimal("0.01"), max_digits=14,
                                 decimal_places=2, help_text=_("Paid by card to confirm the dates."))
    included = forms.CharField(label=_("What is included"), widget=forms.Textarea(attrs={"rows": 3}),
                               required=False, max_length=5000)
    treatment_plan = forms.CharField(label=_("Treatment plan"), widget=forms.Textarea(attrs={"rows": 5}),
                                     max_length=10000)
    window_start = forms.DateField(label=_("Earliest start"), widget=DateInput())
    window_end = forms.DateField(label=_("Latest start"), widget=DateInput())
    valid_until = forms.DateField(label=_("Valid until"), widget=DateInput(),
                                  help_text=_("The patient can accept the quote until the end of this day."))

    def clean_window_start(self):
        return near_date(self.cleaned_data.get("window_start"))

    def clean_window_end(self):
        return near_date(self.cleaned_data.get("window_end"))

    def clean_valid_until(self):
        return near_date(self.cleaned_data.get("valid_until"))

    def clean(self):
        data = super().clean()
        price, deposit = data.get("price"), data.get("deposit")
        if price is not None and deposit is not None and deposit > price:
            self.add_error("deposit", _("The deposit cannot be more than the price."))
        start, end = data.get("window_start"), data.get("window_end")
        if start is not None and end is not None and end < start:
            self.add_error("window_end", _("The latest start date must not be before the earliest."))
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        tz = self.tz or timezone.get_current_timezone()
        valid_until = datetime.combine(data["valid_until"], time(23, 59, 59), tzinfo=tz)
        return {
            "price": to_minor(data["price"]), "deposit": to_minor(data["deposit"]),
            "included": data.get("included", ""), "treatment_plan": data["treatment_plan"],
            "window_start": data["window_start"], "window_end": data["window_end"], "valid_until": valid_until,
        }


class DeclineForm(forms.Form):
    reason = forms.CharField(label=_("Reason for the patient"), widget=forms.Textarea(attrs={"rows": 3}),
                             required=False, max_length=5000,
                             help_text=_("The patient reads this. Say why, and what they could do instead."))


class ExtraDecisionForm(forms.Form):
    """The clinic's answer about one extra a patient chose (bookings.trip.extras.decide)."""

    CONFIRM, DECLINE = "confirm", "decline"
    decision = forms.ChoiceField(choices=[(CONFIRM, _("Confirm")), (DECLINE, _("Cannot provide"))])
    # required to decline (the patient reads it), checked in clean(): confirming needs none
    reason = forms.CharField(label=_("Why the clinic cannot provide it"), required=False, max_length=1000)

    def clean_reason(self):
        return (self.cleaned_data.get("reason") or "").replace("\x00", "").strip()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == self.DECLINE and not cleaned.get("reason"):
            self.add_error("reason", _("Say why the clinic cannot provide it: the patient reads it."))
        return cleaned

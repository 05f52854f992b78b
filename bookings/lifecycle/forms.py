"""Patient booking forms: choosing a slot, requesting a treatment, messages and cancellation.

Every message is translated; a form that fails re-renders with what the patient typed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bookings.lifecycle import reasons


class SlotChoiceForm(forms.Form):
    """One POST button of the slot picker: the start (ISO 8601 with offset) and the request key."""

    start = forms.CharField(max_length=64)
    client_key = forms.CharField(max_length=80)

    error_messages = {
        "start": _("That time could not be read. Please choose a time from the list."),
        "client_key": _("The page was out of date. Please choose the time again."),
    }

    @staticmethod
    def parse_start(raw: str) -> datetime:
        """An aware datetime from ISO 8601 with its offset, within two years of today; ValueError otherwise."""
        value = datetime.fromisoformat((raw or "").strip()[:64])
        if value.tzinfo is None:
            raise ValueError("naive")
        now = timezone.now()
        if not (now - timedelta(days=1) <= value <= now + timedelta(days=731)):
            raise ValueError("out of range")
        return value

    def clean_start(self) -> datetime:
        try:
            return self.parse_start(self.cleaned_data.get("start") or "")
        except (ValueError, OverflowError):
            raise forms.ValidationError(self.error_messages["start"], code="start") from None

    def clean_client_key(self) -> str:
        key = (self.cleaned_data.get("client_key") or "").strip()
        if not key:
            raise forms.ValidationError(self.error_messages["client_key"], code="client_key")
        return key

    def first_error(self) -> str:
        for errors in self.errors.values():
            for error in errors:
                return str(error)
        return str(self.error_messages["start"])


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data if d]
        return [single(data, initial)] if data else []


MAX_FILES = 10


class RequestTreatmentForm(forms.Form):
    """The short pre-assessment the clinician reads first, a note, and optional records."""

    diagnosis = forms.CharField(
        label=_("Diagnosis"), max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What your doctors have found, in your own words, with dates if you know them."),
        error_messages={"required": _("Please describe the diagnosis, even briefly.")},
    )
    prior_treatment = forms.CharField(
        label=_("Treatment so far"), max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Operations, radiotherapy, chemotherapy or other treatment you have had. Write “none” if none."),
        error_messages={"required": _("Please say what treatment you have had, or write “none”.")},
    )
    current_state = forms.CharField(
        label=_("How you are now"), max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Symptoms, whether you can walk and travel, and any medicines you take."),
        error_messages={"required": _("Please describe how you are now.")},
    )
    note = forms.CharField(
        label=_("Note to the clinic (optional)"), max_length=3000, required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Preferred dates, questions, who will travel with you."),
    )
    # explicit consent to process the answers and files and share them with the clinic (bookings.patients.consent)
    consent = forms.BooleanField(
        label=_("I agree to share my health data with the clinic (see the text above)."),
        error_messages={"required": _("The clinic can only review your request with your consent. Tick the box "
                                      "to agree.")},
    )
    records = MultipleFileField(
        label=_("Medical records (optional)"),
        help_text=_("Reports, scans, discharge summaries (PDF, images, DICOM or a ZIP). Only this clinic can read "
                    "them. You can also add files later."),
    )

    def __init__(self, *args, uploads_enabled: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not uploads_enabled:
            del self.fields["records"]

    def clean_records(self):
        files = self.cleaned_data.get("records") or []
        if len(files) > MAX_FILES:
            raise forms.ValidationError(_("Please send at most %(count)d files at once.") % {"count": MAX_FILES})
        return files

    def questionnaire(self) -> dict:
        return {key: self.cleaned_data[key].strip() for key in ("diagnosis", "prior_treatment", "current_state")}


class MessageForm(forms.Form):
    """A message about one booking, from the patient or from the clinic's desk (``label`` says to whom)."""

    body = forms.CharField(
        label=_("Your message"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Please write a message before sending.")},
    )

    def __init__(self, *args, label=None, **kwargs):
        super().__init__(*args, **kwargs)
        if label:
            self.fields["body"].label = label

    def clean_body(self):
        body = (self.cleaned_data.get("body") or "").strip()
        if not body:
            raise forms.ValidationError(_("Please write a message before sending."))
        return body


PATIENT_CANCEL_REASONS = reasons.reasons_for(reasons.PATIENT_SIDE)


class CancelForm(forms.Form):
    """Cancelling a booking, by the patient or by the clinic (``side``): only that side's reasons are offered."""

    reason = forms.ChoiceField(
        label=_("Why are you cancelling?"),
        error_messages={"invalid_choice": _("Please choose a reason from the list.")},
    )
    confirm = forms.BooleanField(
        label=_("I understand that the booking will be cancelled and the dates released."),
        error_messages={"required": _("Please tick the box to confirm the cancellation.")},
    )

    def __init__(self, *args, side=reasons.PATIENT_SIDE, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].choices = reasons.choices_for(side)
        if side == reasons.CLINIC_SIDE:
            self.fields["reason"].label = _("Why")
            self.fields["reason"].initial = reasons.CLINIC_CANCELLED
            self.fields["confirm"].label = _("I confirm that the clinic cancels this booking. "
                                             "The patient gets a full refund of what they paid.")

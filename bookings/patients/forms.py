"""Forms for the patient's own pages: profile (passport data for the visa letter), companions, uploads."""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import date

import phonenumbers
from django import forms
from django.conf import settings
from django.forms import BaseInlineFormSet, inlineformset_factory
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from bookings.models import Booking, Companion, PatientProfile
from bookings.patients import consent
from portal.l10n import country_choices as localized
from portal.l10n import timezone_choices as grouped

MAX_COMPANIONS = 2
PASSPORT_NUMBER = re.compile(r"^[A-Z0-9]{5,20}$")


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA zone tzdata knows, sorted (read from disk once per process)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def timezone_choices():
    """The zones of our patients' countries first, named in the reader's language (portal.l10n)."""
    return [("", _("Choose your time zone"))] + grouped()


def country_choices():
    """Countries named in the reader's language, in that language's alphabetical order (CLDR, ICU)."""
    return [("", "—")] + localized()


class LocalizedCountries:
    """Give a form's citizenship fields the reader's country names, sorted as the reader's language sorts."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("citizenship")
        if field is not None:
            field.choices = country_choices()


class LanguageSelect(forms.Select):
    """Each language named in itself, marked with its ``lang`` (screen readers pronounce it right)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value:
            option["attrs"]["lang"] = value
        return option


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class PassportFieldsMixin:
    """Checks shared by the patient's and the companions' passport data."""

    def clean_passport_number(self):
        value = re.sub(r"[\s\-]", "", self.cleaned_data.get("passport_number") or "").upper()
        if value and not PASSPORT_NUMBER.match(value):
            raise forms.ValidationError(
                _("Enter the passport number as printed: 5 to 20 Latin letters and digits, without spaces."),
                code="passport_number")
        return value

    def clean_passport_expiry(self):
        value = self.cleaned_data.get("passport_expiry")
        if value and value <= timezone.localdate():
            raise forms.ValidationError(
                _("This passport has expired. Enter a passport that is still valid (renew it before you travel)."),
                code="passport_expired")
        return value

    def clean_date_of_birth(self):
        value = self.cleaned_data.get("date_of_birth")
        today = timezone.localdate()
        if value and value > today:
            raise forms.ValidationError(_("The date of birth cannot be in the future."), code="future_birth")
        if value and value < date(today.year - 130, 1, 1):
            raise forms.ValidationError(_("Check the year of birth."), code="old_birth")
        return value


DATE_FIELDS = {"date_of_birth": DateInput(attrs={"autocomplete": "bday"}), "passport_expiry": DateInput()}
NAME_HELP = _("Exactly as printed in the passport, in Latin letters as in its machine-readable lines.")


class ProfileForm(LocalizedCountries, PassportFieldsMixin, forms.ModelForm):
    home_timezone = forms.ChoiceField(
        label=_("Home time zone"), required=False, choices=timezone_choices,
        help_text=_("We show appointment times in the clinic's time and in yours."),
        widget=forms.Select(attrs={"data-browser-zone": "1"}))

    class Meta:
        model = PatientProfile
        fields = ["given_names", "family_name", "date_of_birth", "citizenship", "passport_number",
                  "passport_expiry", "phone", "preferred_language", "home_timezone"]
        widgets = {
            **DATE_FIELDS,
            "given_names": forms.TextInput(attrs={"autocomplete": "given-name"}),
            "family_name": forms.TextInput(attrs={"autocomplete": "family-name"}),
            "phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
            "preferred_language": LanguageSelect,
        }
        help_texts = {
            "given_names": NAME_HELP,
            "family_name": NAME_HELP,
            "passport_expiry": _("The clinic's visa invitation needs a passport valid for your whole stay."),
            "phone": _("With the country code, for example +7 701 234 5678. We call or message only about "
                       "your care."),
            "preferred_language": _("For emails and messages from us and the clinic."),
        }

    def clean_phone(self):
        raw = (self.cleaned_data.get("phone") or "").strip()
        if not raw:
            return ""
        # A number without the + may still be read with the country of citizenship as a hint.
        region = str(self.data.get(self.add_prefix("citizenship")) or "").upper() or None
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise forms.ValidationError(
                _("Enter a valid phone number with the country code, for example +7 701 234 5678."),
                code="phone")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def clean_home_timezone(self):
        value = self.cleaned_data.get("home_timezone") or ""
        if value and value not in time_zones():
            raise forms.ValidationError(_("Choose a time zone from the list."), code="timezone")
        return value


class CompanionForm(LocalizedCountries, PassportFieldsMixin, forms.ModelForm):
    class Meta:
        model = Companion
        fields = ["given_names", "family_name", "date_of_birth", "citizenship", "passport_number",
                  "passport_expiry", "relationship"]
        widgets = DATE_FIELDS
        help_texts = {"given_names": NAME_HELP, "family_name": NAME_HELP,
                      "relationship": _("For example: spouse, parent, interpreter.")}


class BaseCompanionFormSet(BaseInlineFormSet):
    default_error_messages = {
        **BaseInlineFormSet.default_error_messages,
        "too_many_forms": _("You can bring at most %(num)d companions. Remove one before adding another."),
    }


CompanionFormSet = inlineformset_factory(
    PatientProfile, Companion, form=CompanionForm, formset=BaseCompanionFormSet,
    extra=MAX_COMPANIONS, max_num=MAX_COMPANIONS, validate_max=True, can_delete=True,
)


class RecordUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        error_messages={
            "required": _("Choose a file to upload."),
            "empty": _("The file is empty. Choose the file again, or export it again from the program that "
                       "made it."),
            "invalid": _("No file was received. Choose the file again."),
        },
    )
    booking = forms.ModelChoiceField(
        label=_("About which booking?"), queryset=Booking.objects.none(), required=False,
        empty_label=_("Not about a specific booking"),
        help_text=_("The clinic of that booking will be able to read the file. Files not attached to a "
                    "booking are seen only by you."),
        error_messages={"invalid_choice": _("Choose one of your bookings.")},
    )
    description = forms.CharField(
        label=_("Description"), max_length=200, required=False,
        help_text=_("For example: MRI of the brain, March 2025."))
    consent = forms.BooleanField(
        label=_("I agree to share my health data with the clinic of this booking."), required=False,
        help_text=_("Needed once per booking, the first time you attach a file to it. You can withdraw it on the "
                    "booking's page."))

    def clean(self):
        data = super().clean()
        booking = data.get("booking")
        if booking is not None and not data.get("consent") and not consent.has_consent(booking):
            self.add_error("consent", _("To attach a file to a booking, agree to share it with that booking's "
                                        "clinic (or choose “Not about a specific booking”)."))
        return data

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["booking"].queryset = Booking.objects.filter(user=user).order_by("-created_at")
        self.fields["file"].help_text = _(
            "PDF, JPEG, PNG, DICOM, or a ZIP of DICOM files; up to %(size)s each."
        ) % {"size": filesizeformat(settings.RECORD_MAX_BYTES)}

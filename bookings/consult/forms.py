"""Forms: the patient's second-opinion request (questions and records) and the clinician's opinion."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from bookings.consult.models import SecondOpinion
from bookings.lifecycle.forms import MAX_FILES, MultipleFileField
from catalog.models import MoneyFormField, Offering


class OpinionRequestForm(forms.Form):
    """What the patient asks, with the records the clinician should read."""

    diagnosis = forms.CharField(
        label=_("Diagnosis"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What your doctors have found, in your own words, with dates if you know them."),
        error_messages={"required": _("Please describe the diagnosis, even briefly.")})
    questions = forms.CharField(
        label=_("Your questions to the specialist"), max_length=3000, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For example: is the proposed operation needed? Can it be done in Kazakhstan, and how long "
                    "would I stay?"),
        error_messages={"required": _("Please write at least one question.")})
    # explicit consent to share the answers and files with the clinic (bookings.patients.consent)
    consent = forms.BooleanField(
        label=_("I agree to share my health data with the clinic (see the text above)."),
        error_messages={"required": _("The clinic can only review your request with your consent. Tick the box "
                                      "to agree.")})
    records = MultipleFileField(
        label=_("Medical records"),
        help_text=_("Reports, scans, discharge summaries (PDF, images, DICOM or a ZIP of a study). Only this "
                    "clinic can read them."))

    def clean_records(self):
        files = self.cleaned_data.get("records") or []
        if not files:
            raise forms.ValidationError(_("Please attach your records: the specialist's opinion is based on them."))
        if len(files) > MAX_FILES:
            raise forms.ValidationError(_("Please send at most %(count)d files at once.") % {"count": MAX_FILES})
        return files


class OpinionForm(forms.Form):
    """The clinician's structured opinion."""

    findings = forms.CharField(label=_("Findings"), max_length=10000, widget=forms.Textarea(attrs={"rows": 5}))
    recommended_treatment = forms.CharField(label=_("Recommended treatment"), max_length=10000,
                                            widget=forms.Textarea(attrs={"rows": 4}))
    treatable_here = forms.ChoiceField(label=_("Can it be done at this clinic?"),
                                       choices=SecondOpinion.TREATABLE_CHOICES, widget=forms.RadioSelect)
    indicative_price = MoneyFormField(label=_("Indicative price (tenge)"), required=False,
                                      help_text=_("An estimate, not a quote; leave empty if you cannot say yet."))
    suggested_offering = forms.ModelChoiceField(
        label=_("Treatment the patient can request"), queryset=None, required=False,
        help_text=_("One click on the patient's page turns the opinion into a request for it, with the records."))

    def __init__(self, *args, offerings=(), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["suggested_offering"]
        field.queryset = Offering.objects.filter(pk__in=[o.pk for o in offerings])
        field.label_from_instance = lambda o: o.page.title

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("treatable_here") == SecondOpinion.NO and cleaned.get("suggested_offering"):
            self.add_error("suggested_offering", _("You answered that it cannot be done here: leave this empty."))
        return cleaned

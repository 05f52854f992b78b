from django import forms
from django.utils.translation import gettext_lazy as _


class CatalogueFilterForm(forms.Form):
    """The catalogue's search and filters. Every field is optional; bad values get a message, not a 500."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200, strip=True)
    specialty = forms.SlugField(label=_("Specialty"), required=False, max_length=100)
    city = forms.SlugField(label=_("City"), required=False, max_length=100)
    clinic = forms.SlugField(label=_("Clinic"), required=False, max_length=255)
    price_min = forms.IntegerField(label=_("Price from (₸)"), required=False, min_value=0, max_value=10**12)
    price_max = forms.IntegerField(label=_("Price up to (₸)"), required=False, min_value=0, max_value=10**12)
    stay_max = forms.IntegerField(label=_("Stay up to (days)"), required=False, min_value=1, max_value=1000)

    def clean(self):
        data = super().clean()
        lo, hi = data.get("price_min"), data.get("price_max")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("price_max", _("The upper price must not be below the lower one."))
        return data

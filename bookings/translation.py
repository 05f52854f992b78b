"""Which booking fields exist once per language: resource names, read by clinic staff in their language, and the
clinic's note on an extra (airport transfer, hotel...), read by patients in theirs."""

from modeltranslation.decorators import register
from modeltranslation.translator import TranslationOptions

from bookings.models import OfferingExtra, Resource


@register(Resource)
class ResourceTR(TranslationOptions):
    fields = ("name",)


@register(OfferingExtra)
class OfferingExtraTR(TranslationOptions):
    fields = ("note",)

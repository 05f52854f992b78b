"""Which booking fields exist once per language: resource names, read by clinic staff in their language."""

from modeltranslation.decorators import register
from modeltranslation.translator import TranslationOptions

from bookings.models import Resource


@register(Resource)
class ResourceTR(TranslationOptions):
    fields = ("name",)

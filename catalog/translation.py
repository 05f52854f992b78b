"""Which catalogue fields exist once per language (modeltranslation adds name_ru, name_kk, ...)."""

from modeltranslation.decorators import register
from modeltranslation.translator import TranslationOptions

from .models import (
    City,
    ClinicIndexPage,
    ClinicPage,
    ServiceFAQ,
    ServicePage,
    SpecialtyIndexPage,
    SpecialtyPage,
)


@register(City)
class CityTR(TranslationOptions):
    fields = ("name",)


@register(SpecialtyIndexPage)
class SpecialtyIndexPageTR(TranslationOptions):
    fields = ("intro",)


@register(SpecialtyPage)
class SpecialtyPageTR(TranslationOptions):
    fields = ("summary", "body")


@register(ServicePage)
class ServicePageTR(TranslationOptions):
    fields = ("summary", "synonyms", "description", "who_for", "course", "documents", "included", "equipment")


@register(ServiceFAQ)
class ServiceFAQTR(TranslationOptions):
    fields = ("question", "answer")


@register(ClinicIndexPage)
class ClinicIndexPageTR(TranslationOptions):
    fields = ("intro",)


@register(ClinicPage)
class ClinicPageTR(TranslationOptions):
    fields = ("short_name", "address", "summary", "description", "equipment")

from modeltranslation.decorators import register
from modeltranslation.translator import TranslationOptions

from .models import HomePage, InformationPage


@register(HomePage)
class HomePageTR(TranslationOptions):
    fields = ("hero_title", "hero_intro")


@register(InformationPage)
class InformationPageTR(TranslationOptions):
    fields = ("summary", "body")

"""Site pages that are not the catalogue: the home page and information pages."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.search import index

from catalog.models import ImportKeyMixin


class HomePage(Page):
    """The root of the site in every language."""

    hero_title = models.CharField(_("headline"), max_length=200, blank=True)
    hero_intro = models.TextField(_("introduction"), blank=True)

    content_panels = Page.content_panels + [FieldPanel("hero_title"), FieldPanel("hero_intro")]
    subpage_types = ["catalog.SpecialtyIndexPage", "catalog.ClinicIndexPage", "cms.InformationPage"]
    max_count = 1

    def get_context(self, request, *args, **kwargs):
        from catalog.models import ClinicIndexPage, SpecialtyIndexPage, SpecialtyPage

        context = super().get_context(request, *args, **kwargs)
        context["catalogue"] = SpecialtyIndexPage.objects.child_of(self).live().first()
        context["clinic_index"] = ClinicIndexPage.objects.child_of(self).live().first()
        context["specialties"] = SpecialtyPage.objects.live().order_by("order", "title")
        context["information_pages"] = InformationPage.objects.child_of(self).live().in_menu()
        return context


class InformationPage(ImportKeyMixin, Page):
    """Travel and visa, accommodation, FAQ, contact: prose that editors keep current."""

    summary = models.TextField(_("summary"), blank=True)
    body = RichTextField(_("body"), blank=True)

    content_panels = Page.content_panels + [FieldPanel("summary"), FieldPanel("body")]
    search_fields = Page.search_fields + [index.SearchField("summary"), index.SearchField("body")]
    parent_page_types = ["cms.HomePage", "cms.InformationPage"]

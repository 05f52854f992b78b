"""Site pages that are not the catalogue: the home page and information pages."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.search import index

from catalog.models import (
    ClinicIndexPage,
    ImportKeyMixin,
    SpecialtyIndexPage,
    SpecialtyPage,
    missing_translation,
)
from portal.preview import LanguagePreviewMixin


class HomePage(LanguagePreviewMixin, Page):
    """The root of the site in every language."""

    hero_title = models.CharField(_("headline"), max_length=200, blank=True)
    hero_intro = models.TextField(_("introduction"), blank=True)

    content_panels = Page.content_panels + [FieldPanel("hero_title"), FieldPanel("hero_intro")]
    subpage_types = ["catalog.SpecialtyIndexPage", "catalog.ClinicIndexPage", "cms.InformationPage"]
    max_count = 1

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["catalogue"] = SpecialtyIndexPage.objects.child_of(self).live().first()
        context["clinic_index"] = ClinicIndexPage.objects.child_of(self).live().first()
        context["specialties"] = SpecialtyPage.objects.live().order_by("order", "title")
        context["information_pages"] = InformationPage.objects.child_of(self).live().in_menu()
        return context


class InformationPage(LanguagePreviewMixin, ImportKeyMixin, Page):
    """Travel and visa, accommodation, FAQ, contact: prose that editors keep current."""

    summary = models.TextField(_("summary"), blank=True)
    body = RichTextField(_("body"), blank=True)

    content_panels = Page.content_panels + [FieldPanel("summary"), FieldPanel("body")]
    search_fields = Page.search_fields + [index.SearchField("summary"), index.SearchField("body")]

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["missing_translation"] = missing_translation(self, ("summary", "body"))
        return context
    parent_page_types = ["cms.HomePage", "cms.InformationPage"]


@register_setting(icon="mail")
class ContactChannels(BaseSiteSetting):
    """How patients reach Emhana's coordinators: set by editors, shown on the contact page and on clinic pages
    whose own phone is not known. Empty channels are not shown."""

    phone = models.CharField(_("phone"), max_length=40, blank=True, help_text=_("International format, e.g. +7 717 200 00 00."))
    email = models.EmailField(_("email"), blank=True)
    whatsapp = models.URLField(_("WhatsApp link"), blank=True, help_text=_("e.g. https://wa.me/77172000000"))
    telegram = models.URLField(_("Telegram link"), blank=True, help_text=_("e.g. https://t.me/emhana"))
    wechat_id = models.CharField(_("WeChat ID"), max_length=60, blank=True)
    hours = models.CharField(_("hours"), max_length=120, blank=True,
                             help_text=_("When coordinators answer, e.g. Mon–Fri 09:00–18:00 (Astana time)."))
    is_demo = models.BooleanField(_("demo data"), default=False)

    panels = [
        MultiFieldPanel([FieldPanel("phone"), FieldPanel("email"), FieldPanel("hours")], heading=_("Phone and email")),
        MultiFieldPanel([FieldPanel("whatsapp"), FieldPanel("telegram"), FieldPanel("wechat_id")],
                        heading=_("Messengers")),
        FieldPanel("is_demo"),
    ]

    class Meta:
        verbose_name = _("contact channels")

    @property
    def phone_link(self) -> str:
        return "tel:" + "".join(c for c in self.phone if c.isdigit() or c == "+")

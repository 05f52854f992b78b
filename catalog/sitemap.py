"""sitemap.xml: every live page in every language, each with its hreflang alternates."""

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.contrib.sitemaps.views import sitemap
from django.views.decorators.cache import cache_page
from wagtail.models import Page


class PageSitemap(Sitemap):
    i18n = True
    alternates = True
    x_default = True
    languages = [code for code, _name in settings.LANGUAGES]

    def items(self):
        return list(Page.objects.live().public().filter(depth__gte=2).order_by("path"))

    def location(self, item):
        parts = item.get_url_parts()
        return parts[2] if parts else "/"

    def lastmod(self, item):
        return item.last_published_at


@cache_page(600)
def sitemap_view(request):
    return sitemap(request, sitemaps={"pages": PageSitemap()})

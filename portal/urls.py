from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls

from catalog.sitemap import sitemap_view

from . import views

admin.autodiscover()
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("robots.txt", views.robots_txt, name="robots_txt"),
    path("sitemap.xml", sitemap_view, name="sitemap"),
    path("django-admin/", admin.site.urls),
    path("admin/", include(wagtailadmin_urls)),
    path("_allauth/", include("allauth.headless.urls")),
    path("api/v1/", include("portal.api")),
    path("payments/", include("bookings.payments.urls")),
    path("desk/", include("bookings.desk.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
]

if settings.STRIPE_JS_TEST_DOUBLE:
    urlpatterns.append(path("stripe-test/", include("bookings.payments.test_double")))

urlpatterns += i18n_patterns(
    path("accounts/", include("allauth.urls")),
    path("my/", include("bookings.urls")),
    path("currency/", include("catalog.currency_urls")),
    path("", include(wagtail_urls)),
    prefix_default_language=True,
)

handler404 = "portal.errors.page_not_found"
handler500 = "portal.errors.server_error"

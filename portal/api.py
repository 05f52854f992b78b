"""The JSON API under /api/v1/ (django-ninja), with its OpenAPI document at /api/v1/openapi.json."""

from django.urls import path
from ninja import NinjaAPI

from bookings.api import router as bookings_router
from catalog.api import router as catalog_router

api = NinjaAPI(
    title="Emhana API",
    version="1.0",
    description="Catalogue and booking API for partners, agents and the mobile app.",
    urls_namespace="api",
    docs_url="/docs",
)
api.add_router("", catalog_router)
api.add_router("", bookings_router)

urlpatterns = [path("", api.urls)]

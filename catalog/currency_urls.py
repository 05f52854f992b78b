from django.urls import path

from .currency import choose_currency

urlpatterns = [path("", choose_currency, name="choose_currency")]

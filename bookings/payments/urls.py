from django.urls import path

from bookings.payments import webhooks

urlpatterns = [path("stripe/webhook/", webhooks.stripe_webhook, name="stripe_webhook")]

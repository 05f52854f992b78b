"""The patient's pages under /my/: bookings (bookings.lifecycle.views) and profile and records
(bookings.patients.views)."""

from django.urls import path

from bookings.lifecycle import views
from bookings.patients import views as patient_views

urlpatterns = [
    path("", views.dashboard, name="patient_dashboard"),
    path("book/<int:offering_id>/", views.book_offering, name="book_offering"),
    path("request/<int:offering_id>/", views.request_treatment, name="request_treatment"),
    path("bookings/<str:reference>/", views.booking_detail, name="booking_detail"),
    path("bookings/<str:reference>/pay/", views.checkout, name="booking_checkout"),
    path("bookings/<str:reference>/dates/", views.accept_quote, name="booking_accept_quote"),
    path("bookings/<str:reference>/cancel/", views.cancel, name="booking_cancel"),
    path("bookings/<str:reference>/move/", views.reschedule, name="booking_reschedule"),
    path("bookings/<str:reference>/visa-letter.pdf", views.visa_letter, name="visa_letter"),
    path("profile/", patient_views.profile, name="patient_profile"),
    path("records/", patient_views.records, name="patient_records"),
    path("records/<uuid:record_id>/", patient_views.record_download, name="record_download"),
]

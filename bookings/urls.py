"""The patient's pages under /my/: bookings (bookings.lifecycle.views) and profile and records
(bookings.patients.views)."""

from django.urls import path

from bookings.consult import views as consult_views
from bookings.lifecycle import views
from bookings.patients import privacy_views
from bookings.patients import views as patient_views
from bookings.trip import views as trip_views

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
    path("bookings/<str:reference>/extras/", trip_views.choose_extras, name="trip_extras"),
    path("bookings/<str:reference>/estimate.pdf", trip_views.estimate_pdf, name="trip_estimate_pdf"),
    path("bookings/<str:reference>/visa-refused/", trip_views.visa_refused, name="trip_visa_refused"),
    path("waitlist/join/<int:offering_id>/", trip_views.waitlist_join, name="trip_waitlist_join"),
    path("waitlist/<int:entry_id>/", trip_views.waitlist_entry, name="trip_waitlist_entry"),
    path("profile/", patient_views.profile, name="patient_profile"),
    path("records/", patient_views.records, name="patient_records"),
    path("records/<uuid:record_id>/", patient_views.record_download, name="record_download"),
    path("privacy/", privacy_views.privacy_page, name="patient_privacy"),
    path("privacy/consent/<str:reference>/", privacy_views.consent_change, name="privacy_consent"),
    path("privacy/export/", privacy_views.export_request, name="privacy_export"),
    path("privacy/export/<uuid:export_id>/", privacy_views.export_download, name="privacy_export_download"),
    path("privacy/delete-account/", privacy_views.erase, name="privacy_erase"),
    path("bookings/<str:reference>/call/", consult_views.consultation_join, name="consultation_join"),
    path("bookings/<str:reference>/opinion.pdf", consult_views.opinion_pdf, name="opinion_pdf"),
    path("bookings/<str:reference>/opinion/request/", consult_views.opinion_to_request, name="opinion_to_request"),
    path("second-opinion/<int:offering_id>/", consult_views.second_opinion_request, name="second_opinion_request"),
]

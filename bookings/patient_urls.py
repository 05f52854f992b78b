from django.urls import path

from . import patient_views, views

urlpatterns = [
    path("", views.dashboard, name="patient_dashboard"),
    path("book/<int:offering_id>/", views.book_offering, name="book_offering"),
    path("request/<int:offering_id>/", views.request_treatment, name="request_treatment"),
    # profile, companions, medical records (bookings.patient_views)
    path("profile/", patient_views.profile, name="patient_profile"),
    path("records/", patient_views.records, name="patient_records"),
    path("records/<uuid:record_id>/", patient_views.record_download, name="record_download"),
]

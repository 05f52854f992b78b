"""The clinic desk (/desk/), outside the language prefix; LocaleMiddleware picks the staff member's language."""

from django.urls import path

from bookings.consult import views as consult_views
from bookings.trip import views as trip_views

from . import views

app_name = "desk"

urlpatterns = [
    path("", views.home, name="home"),
    path("clinic/<int:clinic_id>/day/", views.day_list, name="day"),
    path("clinic/<int:clinic_id>/queue/", views.queue, name="queue"),
    path("appointment/<int:appointment_id>/attendance/", views.mark_attendance, name="attendance"),
    path("resource/<int:resource_id>/week/", views.week, name="week"),
    path("resource/<int:resource_id>/hours/", views.hours, name="hours"),
    path("resource/<int:resource_id>/exceptions/", views.exceptions, name="exceptions"),
    path("resource/<int:resource_id>/exceptions/<int:exception_id>/delete/", views.exception_delete,
         name="exception_delete"),
    path("booking/<int:booking_id>/", views.booking_detail, name="booking"),
    path("booking/<int:booking_id>/visa-letter.pdf", views.booking_visa_letter, name="visa_letter"),
    path("booking/<int:booking_id>/review/", views.booking_start_review, name="start_review"),
    path("booking/<int:booking_id>/quote/", views.booking_quote, name="quote"),
    path("booking/<int:booking_id>/decline/", views.booking_decline, name="decline"),
    path("booking/<int:booking_id>/cancel/", views.booking_cancel, name="cancel"),
    path("booking/<int:booking_id>/message/", views.booking_message, name="message"),
    path("booking/<int:booking_id>/extras/<int:extra_id>/", trip_views.desk_extra, name="trip_extra"),
    path("booking/<int:booking_id>/visa-refusal/<int:claim_id>/", trip_views.desk_refusal, name="trip_refusal"),
    path("booking/<int:booking_id>/call/", consult_views.desk_consultation_join, name="consultation_join"),
    path("booking/<int:booking_id>/opinion/", consult_views.desk_opinion, name="opinion"),
    path("records/<uuid:record_id>/viewer/", consult_views.dicom_viewer, name="dicom_viewer"),
    path("records/<uuid:record_id>/dicom/", consult_views.dicom_file, name="dicom_file"),
    path("records/<uuid:record_id>/members/<int:index>/", consult_views.dicom_member, name="dicom_member"),
]

"""The clinic desk (/desk/), outside the language prefix; LocaleMiddleware picks the staff member's language."""

from django.urls import path

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
    path("booking/<int:booking_id>/review/", views.booking_start_review, name="start_review"),
    path("booking/<int:booking_id>/quote/", views.booking_quote, name="quote"),
    path("booking/<int:booking_id>/decline/", views.booking_decline, name="decline"),
    path("booking/<int:booking_id>/cancel/", views.booking_cancel, name="cancel"),
    path("booking/<int:booking_id>/message/", views.booking_message, name="message"),
]

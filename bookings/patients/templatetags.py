"""``{% load privacy %}``: the consent panel on the patient's booking page (sharing with the clinic, and why not)."""

from django import template
from django.template.loader import render_to_string

from bookings.patients import consent as consent_service

register = template.Library()


@register.simple_tag(takes_context=True)
def consent_panel(context, booking):
    request = context.get("request")
    html = render_to_string("bookings/_consent_panel.html", {
        "booking": booking, "consent": consent_service.live(booking),
        "consent_text": consent_service.text(booking.clinic.title),
    }, request=request)
    return html


@register.simple_tag
def consent_text(clinic_title):
    """The consent text the patient agrees to (the same words are stored with their consent)."""
    return consent_service.text(clinic_title)

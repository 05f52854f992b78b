"""Patient-facing booking views (thin: every change goes through bookings.services)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dashboard(request):
    return render(request, "bookings/dashboard.html", {"bookings": request.user.bookings.all()})


@login_required
def book_offering(request, offering_id):
    raise NotImplementedError


@login_required
def request_treatment(request, offering_id):
    raise NotImplementedError

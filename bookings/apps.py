from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "bookings"
    verbose_name = "Bookings"

    def ready(self):
        # lazy: AppConfig.ready, the one place models may be imported (apps.py itself loads before them)
        from bookings.engine import versions
        from bookings.engine.models import (
            Allocation,
            AvailabilityException,
            OfferingResource,
            Resource,
            WeeklyHours,
        )
        from bookings.patients import sessions
        from catalog.models import City, ClinicPage, Offering, ServicePage

        sessions.connect()  # staff sessions: timeouts start at sign-in (issue 10)
        versions.connect(Resource, WeeklyHours, AvailabilityException, OfferingResource, Allocation,  # slot cache
                         Offering, ServicePage, ClinicPage, City)

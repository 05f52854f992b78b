from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "bookings"
    verbose_name = "Bookings"

    def ready(self):
        from bookings.patients import sessions

        sessions.connect()  # staff sessions: timeouts start at sign-in (issue 10)

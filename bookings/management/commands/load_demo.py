from django.core.management.base import BaseCommand, CommandError

from bookings.demo.data import DEMO_PASSWORD, load_demo


class Command(BaseCommand):
    help = "Load demo resources, hours and staff for the demo clinics (idempotent; refused in production)."

    def handle(self, *args, **options):
        try:
            created = load_demo()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"demo: {len(created)} created"))
        if created and options["verbosity"] > 1:
            for line in created:
                self.stdout.write(f"  {line}")
        if created:
            self.stdout.write(f"demo staff password: {DEMO_PASSWORD} (coordinator.<clinic-slug>@emhana.example, "
                              "editor@emhana.example, admin@emhana.example)")

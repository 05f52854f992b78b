from django.core.management.base import BaseCommand

from catalog.loader import Loader
from portal.pagecache import invalidate


class Command(BaseCommand):
    help = "Build the catalogue (specialties, 80 services, clinics, offerings, information pages) idempotently."

    def handle(self, *args, **options):
        report = Loader(self.stdout).run()
        for line in report.skipped:
            self.stdout.write(self.style.WARNING(f"skipped: {line}"))
        if report.changed:
            invalidate()
        self.stdout.write(self.style.SUCCESS(
            f"catalogue: {len(report.created)} created, {len(report.updated)} updated, {len(report.skipped)} skipped"))

"""Re-encrypt patients' data with the first key of DATA_ENCRYPTION_KEYS (resumable; see bookings.patients.rotation)."""

from django.core.management.base import BaseCommand

from bookings.patients import rotation


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column and stored file with the first key of DATA_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="only count what is still on an old key")

    def handle(self, *args, check=False, **options):
        if not check:
            result = rotation.rotate()
            self.stdout.write(f"re-encrypted: {result['columns']} values, {result['files']} files")
        left = rotation.pending()
        self.stdout.write(f"still on an old key: {left['columns']} values, {left['files']} files")
        if check and (left["columns"] or left["files"]):
            raise SystemExit(1)

"""Re-encrypt patients' data with the first key of DATA_ENCRYPTION_KEYS, or (``--hashes``) re-hash the lookup
hashes with the first key of DATA_HASH_KEYS (both resumable; see bookings.patients.rotation)."""

from django.core.management.base import BaseCommand

from bookings.patients import rotation


class Command(BaseCommand):
    help = ("Re-encrypt every encrypted column and stored file with the first key of DATA_ENCRYPTION_KEYS; with "
            "--hashes, re-hash every lookup hash with the first key of DATA_HASH_KEYS instead.")

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="only count what is still on an old key")
        parser.add_argument("--hashes", action="store_true",
                            help="the lookup hashes (DATA_HASH_KEYS) instead of the encryption (DATA_ENCRYPTION_KEYS)")
        parser.add_argument("--batch", type=int, default=rotation.BATCH, help="rows per transaction (default 200)")

    def handle(self, *args, check=False, hashes=False, batch=rotation.BATCH, **options):
        batch = max(1, batch)
        if hashes:
            if not check:
                self.stdout.write(f"re-hashed: {rotation.rotate_hashes(batch=batch)['hashes']} values")
            left = rotation.pending_hashes()
            self.stdout.write(f"still on an old hash key: {left} values")
            if check and left:
                raise SystemExit(1)
            return
        if not check:
            result = rotation.rotate(batch=batch)
            self.stdout.write(f"re-encrypted: {result['columns']} values, {result['files']} files")
        left = rotation.pending()
        self.stdout.write(f"still on an old key: {left['columns']} values, {left['files']} files")
        if check and (left["columns"] or left["files"]):
            raise SystemExit(1)

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from bookings.demo.mfa import activate_demo_totp, current_code, seconds_left, totp_secret


class Command(BaseCommand):
    help = "Print the current two-factor (TOTP) code of a demo staff account (refused in production)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--activate", action="store_true",
                            help="First give the account TOTP with the demo secret if it has none.")

    def handle(self, *args, email, activate=False, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_totp is refused in production.")
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No account with the email {email}.")
        if activate and totp_secret(user) is None:
            activate_demo_totp(user)
        secret = totp_secret(user)
        if secret is None:
            raise CommandError(f"{email} has no authenticator app set up (run load_demo, or add --activate).")
        self.stdout.write(current_code(secret))
        if options["verbosity"] > 1:
            self.stderr.write(f"valid for about {seconds_left()} more seconds")

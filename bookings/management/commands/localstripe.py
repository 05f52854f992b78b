"""Serve localstripe on 127.0.0.1 for the embedded default: ``make run`` starts it when no Stripe keys are set.

It registers the site's webhook endpoint with the webhook secret from the settings, so payments made on the
checkout (through the Stripe.js stand-in) confirm bookings exactly as Stripe's webhooks would. Test payments
only: it refuses to run in production.
"""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from bookings.payments.localstripe_server import LocalStripe


class Command(BaseCommand):
    help = "Serve localstripe (a fake Stripe) on 127.0.0.1 for test payments, with the site's webhook registered."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8420)
        parser.add_argument("--site-url", default=settings.SITE_URL,
                            help="where the site runs; its webhook endpoint gets localstripe's events")

    def handle(self, *args, port, site_url, **options):
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("localstripe is for development and tests only.")
        try:
            server = LocalStripe(port=port).start()
        except OSError as exc:  # the port is taken
            raise CommandError(f"127.0.0.1:{port}: {exc.strerror} (is `make run` already running?). Stop it, or "
                               f"run `make run LOCALSTRIPE_PORT=<another port>`.") from exc
        webhook = site_url.rstrip("/") + reverse("stripe_webhook")
        server.register_webhook("emhana", webhook, settings.STRIPE_WEBHOOK_SECRET)
        self.stdout.write(f"localstripe on {server.url} (test payments, no real money); webhooks to {webhook}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        server.stop()

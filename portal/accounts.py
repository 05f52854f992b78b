"""allauth's adapter: its emails are signed with the site's name and link to the site's real address.

Without it allauth names the site after the request's host ("127.0.0.1:8011") because django.contrib.sites
is not installed (Wagtail has its own sites).
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


@dataclass(frozen=True)
class Brand:
    """What allauth's templates read from ``current_site``."""

    name: str
    domain: str


def brand() -> Brand:
    return Brand(name=settings.SITE_NAME, domain=urlsplit(settings.SITE_URL).netloc)


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        super().send_mail(template_prefix, email, {**context, "current_site": brand()})

from django.apps import AppConfig


class VendorLocaleConfig(AppConfig):
    # No strings marked for translation here: one would make makemessages rebuild this app's catalogues from it
    # (and, with --no-obsolete, drop every allauth translation). See __init__.py.
    name = "vendor_locale"
    verbose_name = "Translations of third-party apps"

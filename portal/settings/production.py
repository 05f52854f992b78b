"""Production (``DJANGO_ENV=production`` or ``DJANGO_SETTINGS_MODULE=portal.settings.production``).

Refuses to start with a weak or placeholder secret: the Django ``SECRET_KEY`` and the Stripe keys must come
from the environment, and nothing that only exists for local test payments may be on. Every secure setting
``check --deploy`` asks for is on; the site sits behind one TLS proxy unless ``TRUSTED_PROXY_COUNT`` says other.
"""

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import INSECURE_SECRET_KEY, LOGGING, SECRET_KEY, STORAGES, env

PRODUCTION = True
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])

if SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("Production needs a real SECRET_KEY (50+ random characters) in the environment.")

STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="") or None
STRIPE_JS_TEST_DOUBLE = env.bool("STRIPE_JS_TEST_DOUBLE", default=False)
if (not (STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET)
        or "emhana_local" in STRIPE_SECRET_KEY + STRIPE_PUBLISHABLE_KEY + STRIPE_WEBHOOK_SECRET
        or STRIPE_API_BASE or STRIPE_JS_TEST_DOUBLE):
    raise ImproperlyConfigured("Production needs real STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and "
                               "STRIPE_WEBHOOK_SECRET in the environment, and no STRIPE_API_BASE or test double.")

# Patients' data: real encryption keys from the environment, never the development key derived from SECRET_KEY.
DATA_ENCRYPTION_KEYS = env.list("DATA_ENCRYPTION_KEYS", default=[])
DATA_HASH_KEYS = env.list("DATA_HASH_KEYS", default=[]) or [k for k in [env.str("DATA_HASH_KEY", default="")] if k]


def _check_data_keys(keys, hash_keys, secret_key):
    # lazy: a settings module, which imports the app's code (bookings.patients.crypto) only for this check
    from bookings.patients.crypto import dev_hash_key, dev_key

    if not keys:
        raise ImproperlyConfigured("Production needs DATA_ENCRYPTION_KEYS (comma-separated Fernet keys; the first "
                                   "encrypts) in the environment.")
    for key in keys:
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured("DATA_ENCRYPTION_KEYS holds a value that is not a Fernet key.") from exc
        if key in (dev_key(secret_key), dev_key(INSECURE_SECRET_KEY)):
            raise ImproperlyConfigured("DATA_ENCRYPTION_KEYS holds the development key.")
    if not hash_keys or any(len(k.strip()) < 32 for k in hash_keys):
        raise ImproperlyConfigured("Production needs DATA_HASH_KEYS (comma-separated, 32+ random characters each; "
                                   "the first hashes) or DATA_HASH_KEY (one key) in the environment.")
    if any(k.strip() in (dev_hash_key(secret_key), dev_hash_key(INSECURE_SECRET_KEY)) for k in hash_keys):
        raise ImproperlyConfigured("DATA_HASH_KEYS holds the development hash key.")


_check_data_keys(DATA_ENCRYPTION_KEYS, DATA_HASH_KEYS, SECRET_KEY)

# One TLS proxy in front (X-Forwarded-For / X-Forwarded-Proto); see base for why this matters to rate limits.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT

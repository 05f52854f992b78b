"""Settings shared by every environment, each value read from the environment (12-factor).

``dev`` (the embedded default), ``test`` (pytest) and ``production`` start from here and change
only what differs; ``portal.settings.default_module()`` picks dev or production from ``DJANGO_ENV``.
"""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

PRODUCTION = False  # True only in portal.settings.production

DEBUG = env.bool("DEBUG", default=True)
INSECURE_SECRET_KEY = "dev-insecure-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_SECRET_KEY)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
SITE_NAME = env.str("SITE_NAME", default="Emhana")  # what emails and pages are signed with
WAGTAILADMIN_BASE_URL = SITE_URL

INSTALLED_APPS = [
    # translation registration must come before the apps it patches (TRAPS.md)
    "wagtail_modeltranslation",
    "wagtail_modeltranslation.makemigrations",
    "wagtail_modeltranslation.migrate",
    "modeltranslation",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.settings",
    "wagtail.contrib.routable_page",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_countries",
    "vendor_locale",  # Kazakh/Tajik catalogues for allauth: must stay before "allauth"
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.headless",
    "portal",
    "csp",
    "cms",
    "catalog",
    "bookings",
]

MIDDLEWARE = [
    "portal.requestid.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.middleware.LocaleMiddleware",
    "portal.middleware.RefuseNulMiddleware",
    "portal.middleware.AnonymousPageCacheMiddleware",
    "csp.middleware.CSPMiddleware",  # inside the page cache: cached pages keep their policy
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.StaffMFAMiddleware",
    "bookings.patients.sessions.StaffSessionMiddleware",  # staff: idle/absolute timeouts, re-authentication
    "portal.middleware.OtherLanguageSlugMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "wagtail.contrib.settings.context_processors.settings",
                "portal.context_processors.site",
                "bookings.context_processors.booking_intent",
                "catalog.currency.currency_context",
            ],
            # one dict: each feature's tag library (trip: issue 11's trip plan; consult: consultations)
            "libraries": {"trip": "bookings.trip.templatetags", "consult": "bookings.consult.templatetags",
                          "privacy": "bookings.patients.templatetags"},
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Racing writers get a clean "slot taken" rather than "database is locked" (TRAPS.md).
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------


def cache_config(url: str) -> dict:
    """The default cache from a URL: Redis (django's own backend) or local memory when empty."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "emhana"}
    config = env.cache_url_config(url)
    if url.startswith("redis"):
        config["BACKEND"] = "django.core.cache.backends.redis.RedisCache"
        # a Redis that hangs (not refusing: a full disk, a paused host) must cost a request one second, then the
        # outage page, not the gunicorn worker's whole timeout
        config.setdefault("OPTIONS", {}).update({
            "socket_connect_timeout": env.float("CACHE_CONNECT_TIMEOUT", default=1.0),
            "socket_timeout": env.float("CACHE_TIMEOUT", default=1.0)})
    return config


CACHE_URL = env.str("CACHE_URL", default=env.str("REDIS_URL", default=""))
CACHES = {"default": cache_config(CACHE_URL)}
PAGE_CACHE_SECONDS = env.int("PAGE_CACHE_SECONDS", default=600)

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://"  # eager: no broker is ever contacted (and kombu does not look for one)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# With Redis as the broker, a task a dead worker had taken comes back after the visibility timeout (kombu's
# default: an hour). Keep it above the longest countdown (refund retries: 10 minutes).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
                                   "unacked_restore_throttle": 1}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "sweep-expired-holds": {"task": "bookings.tasks.sweep_expired_holds", "schedule": 60.0},
    "send-due-reminders": {"task": "bookings.tasks.send_due_reminders", "schedule": 600.0},
    "publish-scheduled-pages": {"task": "cms.tasks.publish_scheduled_pages", "schedule": 60.0},
    # patients' data: purge old unconfirmed requests, warn then erase unused accounts, drop expired exports
    "apply-retention": {"task": "bookings.tasks.apply_retention", "schedule": 6 * 3600.0},
    # safety net: freed starts reach the waitlist even if an on-commit trigger was lost (bookings.engine.waitlist)
    "offer-waitlist": {"task": "bookings.tasks.offer_waitlist", "schedule": 120.0},
}

# --- Auth (allauth) -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "patient_dashboard"  # in the language the patient signed in with
WAGTAILADMIN_LOGIN_URL = "account_login"
ACCOUNT_ADAPTER = "portal.accounts.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"{SITE_NAME}: "
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
# How many proxies in front of us append to X-Forwarded-For (TLS terminator, load balancer…). The client's
# address is the entry that many hops from the right; 0 = no proxy, the header is ignored (it could be forged).
# Production assumes one TLS proxy (as SECURE_PROXY_SSL_HEADER does): with 0 behind it every client would
# share the proxy's address, and per-IP limits would lock out everyone at once (TRAPS.md). Used by allauth's
# limits (through portal.accounts.AccountAdapter.get_client_ip), ours (portal.ratelimit) and access logs
# (portal.net.client_ip).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
# Per-IP limits count the client (above), never the proxy; failed logins also count per account ("key"),
# so one address guessing cannot lock out other clients, and many addresses cannot guess one password.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True  # plain http on 127.0.0.1; production turns it off
HEADLESS_ONLY = False
HEADLESS_CLIENTS = ("app", "browser")
HEADLESS_FRONTEND_URLS = {}
# Staff and editors must have MFA (enforced by portal.middleware.StaffMFAMiddleware).
EMHANA_REQUIRE_STAFF_MFA = env.bool("EMHANA_REQUIRE_STAFF_MFA", default=True)
BOOKING_RATE_LIMIT = env.str("BOOKING_RATE_LIMIT", default="30/m")

# --- i18n -----------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("ru", "Русский"),
    ("kk", "Қазақша"),
    ("ky", "Кыргызча"),
    ("uz", "Oʻzbekcha"),
    ("tg", "Тоҷикӣ"),
    ("zh-hans", "简体中文"),
]
LANGUAGE_NAMES_EN = {"en": _("English"), "ru": _("Russian"), "kk": _("Kazakh"), "ky": _("Kyrgyz"),
                     "uz": _("Uzbek"), "tg": _("Tajik"), "zh-hans": _("Chinese")}
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_FALLBACK_LANGUAGES = {"default": ("en", "ru"), "ky": ("ru", "en"), "kk": ("ru", "en"),
                                       "uz": ("ru", "en"), "tg": ("ru", "en"), "ru": ("en",)}
WAGTAILMODELTRANSLATION_TRANSLATE_SLUGS = True
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
# The zone of a clinic or city that names none (Kazakhstan: UTC+5 everywhere since 1 March 2024); the one place.
CLINIC_DEFAULT_TIMEZONE = env.str("CLINIC_DEFAULT_TIMEZONE", default="Asia/Almaty")
# What patients are told to expect after a treatment request (working days until the clinic answers).
REVIEW_RESPONSE_DAYS = env.int("REVIEW_RESPONSE_DAYS", default=3)
# How long a start freed for the first patient on a waitlist is held for them (bookings.engine.waitlist)
WAITLIST_OFFER_MINUTES = env.int("WAITLIST_OFFER_MINUTES", default=120)
# Online consultations (bookings.consult): the video call runs on Jitsi Meet (or another provider's link template,
# e.g. "https://video.example/rooms/{room}"); the link is shown from LEAD minutes before the slot until its end.
CONSULTATION_VIDEO_BASE_URL = env.str("CONSULTATION_VIDEO_BASE_URL", default="https://meet.jit.si")
CONSULTATION_VIDEO_LINK_TEMPLATE = env.str("CONSULTATION_VIDEO_LINK_TEMPLATE", default="")
CONSULTATION_LINK_LEAD_MINUTES = env.int("CONSULTATION_LINK_LEAD_MINUTES", default=10)

# --- Static and media -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# Medical records: outside MEDIA_ROOT, never served by URL, only through the checked view.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=BASE_DIR / "private_media")
RECORD_MAX_BYTES = env.int("RECORD_MAX_BYTES", default=50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Patients' data (bookings/patients: crypto, privacy, consent, export, retention, sessions) ------------
# Fernet keys, comma-separated: the first encrypts, all decrypt (rotation: put the new key first, run
# `manage.py rotate_data_keys`, then drop the old one). Empty = a development key derived from SECRET_KEY
# (production refuses that). DATA_HASH_KEYS key the lookup hashes (e.g. the passport number's): comma-separated,
# the first makes new hashes, all match lookups (rotation: new key first, `rotate_data_keys --hashes`, drop the old
# one); DATA_HASH_KEY alone still works as a one-key list. Empty = a development key (production refuses that).
DATA_ENCRYPTION_KEYS = env.list("DATA_ENCRYPTION_KEYS", default=[])
DATA_HASH_KEYS = env.list("DATA_HASH_KEYS", default=[]) or [k for k in [env.str("DATA_HASH_KEY", default="")] if k]
RESTRICTED_RECORDS_YEARS = env.int("RESTRICTED_RECORDS_YEARS", default=25)
RETENTION_UNCONFIRMED_DAYS = env.int("RETENTION_UNCONFIRMED_DAYS", default=180)
RETENTION_INACTIVE_DAYS = env.int("RETENTION_INACTIVE_DAYS", default=3 * 365)
RETENTION_WARNING_DAYS = env.int("RETENTION_WARNING_DAYS", default=30)
RETENTION_WEBHOOK_DAYS = env.int("RETENTION_WEBHOOK_DAYS", default=90)
DATA_EXPORT_HOURS = env.int("DATA_EXPORT_HOURS", default=72)
STAFF_SESSION_IDLE_SECONDS = env.int("STAFF_SESSION_IDLE_SECONDS", default=30 * 60)
STAFF_SESSION_MAX_SECONDS = env.int("STAFF_SESSION_MAX_SECONDS", default=10 * 3600)
STAFF_REAUTH_SECONDS = env.int("STAFF_REAUTH_SECONDS", default=15 * 60)

# --- Email ----------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Emhana <care@emhana.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Payments -------------------------------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="sk_test_emhana_local")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="pk_test_emhana_local")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="whsec_emhana_local")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="") or None
# Serve our own Stripe.js test double instead of Stripe's script (browser tests on localstripe only).
STRIPE_JS_TEST_DOUBLE = env.bool("STRIPE_JS_TEST_DOUBLE", default=False)

# --- Wagtail --------------------------------------------------------------------------
WAGTAIL_SITE_NAME = "Emhana"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAIL_I18N_ENABLED = False  # one tree, a column per language (modeltranslation) — TRAPS.md
WAGTAILDOCS_EXTENSIONS = ["pdf", "docx"]
WAGTAIL_ENABLE_UPDATE_CHECK = False
WAGTAIL_MODERATION_ENABLED = True
WAGTAILADMIN_PERMITTED_LANGUAGES = [("en", "English"), ("ru", "Russian"), ("zh-hans", "Chinese")]

# --- Security -------------------------------------------------------------------------
# Content Security Policy (django-csp): no inline script anywhere on the site; Stripe.js and its frames only
# from Stripe. Wagtail's and Django's admin and the API docs page keep their own (inline) scripts.
from csp.constants import NONE, SELF, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ("/admin/", "/django-admin/", "/api/v1/docs"),
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, "https://js.stripe.com"],
        "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
        "connect-src": [SELF, "https://api.stripe.com"],
        "img-src": [SELF, "data:"],
        "style-src": [SELF, UNSAFE_INLINE],  # style attributes only; there is no inline script
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SESSION_COOKIE_HTTPONLY = True
# With a shared cache (Redis), sessions are read from it and written through to the database (a signed-in request
# saves a query; a Redis restart loses nothing). End a session with its store's delete(), never by deleting the row:
# the cache keeps it. Without one (local memory is per process), a session signed out in one worker would live on in
# another's memory, so sessions stay in the database only.
SESSION_ENGINE = ("django.contrib.sessions.backends.cached_db" if CACHE_URL
                  else "django.contrib.sessions.backends.db")
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# JSON lines in production (python-json-logger), each with the request id that caused it (portal.requestid)
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.requestid.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    "loggers": {"emhana": {"level": env.str("EMHANA_LOG_LEVEL", default="INFO")}},
}


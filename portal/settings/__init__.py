"""Settings as a package: ``base`` (shared), ``dev`` (the embedded default), ``test`` (pytest), ``production``.

Entry points (manage.py, WSGI, ASGI, Celery) use ``default_module()`` unless ``DJANGO_SETTINGS_MODULE`` is set.
"""

import os


def default_module() -> str:
    """``DJANGO_ENV=production`` selects production settings; anything else the embedded default."""
    return "portal.settings.production" if os.environ.get("DJANGO_ENV") == "production" else "portal.settings.dev"

"""pytest: the embedded default with fast password hashing, a test database that racing threads share as
production's does, and no persistent connections left behind by live-server threads."""

import os
import tempfile

from .base import *  # noqa: F401,F403
from .base import BASE_DIR, DATABASES, env

# demo patients' medical files (load_demo) and anything a test stores: never in the working tree
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=tempfile.mkdtemp(prefix="emhana-test-private-"))

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # a file, not memory: racing threads then wait for the lock as in production
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 0

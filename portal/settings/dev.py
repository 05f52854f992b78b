"""The embedded default (``make run``): SQLite file, eager Celery without a broker, local-memory cache,
console email, DEBUG on. Everything can still be pointed elsewhere through the environment (base)."""

from .base import *  # noqa: F401,F403

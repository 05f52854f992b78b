"""Whole-page cache for anonymous visitors, invalidated by bumping one version number on publish."""

from django.core.cache import cache

VERSION_KEY = "pagecache:version"


def current_version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, 1, None)
        version = cache.get(VERSION_KEY) or 1
    return version


def invalidate(**_kwargs) -> None:
    """Called on publish/unpublish and when prices or rates change: every cached page goes stale."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        cache.set(VERSION_KEY, 2, None)

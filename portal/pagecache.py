"""Whole-page cache for anonymous visitors, invalidated by bumping one version number on publish.

Two levels: the shared cache (Redis in production; every process sees an entry one of them stored) holds each
page as compressed bytes, and each process keeps the pages it served lately in memory (``LOCAL``, a bounded
LRU), so a hit costs one small read of the version number from the shared cache and no unpickling. Entries of
both levels are keyed by the version, so a publish in any process (``invalidate``) reaches every process at its
next request.

Only known query parameters are part of a key (``canonical_query``), and a page is stored only when the view that
rendered it declared that query its own (``declare_query``): junk query strings never create entries.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpResponse

VERSION_KEY = "pagecache:version"

# The query parameters that may be part of a page's key: the catalogue's filters and its page number (blank ones,
# as a submitted filter form sends them, are dropped). Any other parameter makes a request bypass the page cache
# (it is rendered, never stored); which values are stored is the view's to say (``declare_query``).
QUERY_PARAMS = frozenset({"q", "specialty", "city", "clinic", "price_min", "price_max", "stay_max", "page"})
MAX_QUERY_VALUE = 100


def _fresh_version() -> int:
    """A version number no earlier one equals: when the shared cache lost the key (flushed, restarted), the
    processes' local copies of the pages of the old versions must not come back to life."""
    return time.time_ns() // 1000


_raw = threading.local()


def _read_version():
    """The version from the shared cache. With Redis, a GET on a client kept per thread: Django's backend
    builds a client object on every call, which costs about as much as the round trip itself."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return cache.get(VERSION_KEY)
    reader = getattr(_raw, "reader", None)
    if reader is None or reader[0] is not backend:
        key = backend.make_and_validate_key(VERSION_KEY)
        reader = _raw.reader = (backend, backend._cache.get_client(key), key)
    value = reader[1].get(reader[2])
    return None if value is None else int(value)


def current_version() -> int:
    version = _read_version()
    if version is None:
        cache.add(VERSION_KEY, _fresh_version(), None)
        version = cache.get(VERSION_KEY) or _fresh_version()
    return version


def invalidate(**_kwargs) -> None:
    """Called on publish/unpublish and when prices or rates change: every cached page goes stale."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        cache.set(VERSION_KEY, _fresh_version(), None)
    LOCAL.clear()


class LocalLRU:
    """A small thread-safe LRU of this process's recent entries (bounded by count and by total bytes)."""

    def __init__(self, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._data: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return None if found is None else found[0]

    def set(self, key, value, size: int = 0) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, size)
            self._bytes += size
            while self._data and (len(self._data) > self.max_entries or self._bytes > self.max_bytes):
                _k, (_v, s) = self._data.popitem(last=False)
                self._bytes -= s

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)


LOCAL = LocalLRU(getattr(settings, "PAGE_CACHE_LOCAL_ENTRIES", 500),
                 getattr(settings, "PAGE_CACHE_LOCAL_BYTES", 32 * 1024 * 1024))

# ------------------------------------------------------------------------------------ query strings


def canonical_query(query_string: str) -> str | None:
    """The key form of a query string: its known parameters with a value, sorted; None when it has any other
    parameter, a parameter twice or an over-long value (such a request bypasses the cache)."""
    if not query_string:
        return ""
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False, max_num_fields=20)
    except ValueError:
        return None
    seen = set()
    kept = []
    for name, value in pairs:
        if name not in QUERY_PARAMS or name in seen or len(value) > MAX_QUERY_VALUE:
            return None
        seen.add(name)
        if value != "":
            kept.append((name, value))
    return urlencode(sorted(kept))


def declare_query(request, params: dict) -> None:
    """A view says which query its page answers: the (valid) parameters it used. The page is stored only when
    the request's canonical query is exactly that; without a declaration only a page without query is stored."""
    request.page_cache_query = urlencode(sorted((k, str(v)) for k, v in params.items()
                                                if k in QUERY_PARAMS and v not in (None, "")))


def declared_query(request) -> str:
    return getattr(request, "page_cache_query", "")


# ------------------------------------------------------------------------------------ entries


class Entry:
    """A stored page: status, headers and body, ready to be turned into a response again."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @classmethod
    def from_response(cls, response) -> Entry:
        return cls(response.status_code, [(k, v) for k, v in response.items()], response.content)

    def response(self, body: bytes | None = None) -> HttpResponse:
        response = HttpResponse(self.body if body is None else body, status=self.status)
        for k, v in self.headers:
            response[k] = v
        if body is not None:
            response["Content-Length"] = str(len(body))
        return response

    def dumps(self) -> bytes:
        head = "\n".join(f"{k}:{v}" for k, v in self.headers).encode()
        return zlib.compress(b"%d\n%d\n" % (self.status, len(head)) + head + self.body, 6)

    @classmethod
    def loads(cls, data: bytes) -> Entry:
        raw = zlib.decompress(data)
        status, head_len, rest = raw.split(b"\n", 2)
        head_len = int(head_len)
        head = rest[:head_len].decode()
        headers = [tuple(line.split(":", 1)) for line in head.split("\n")] if head else []
        return cls(int(status), headers, rest[head_len:])


# An entry saying "this key renders a page that must not be stored" (it sets a cookie, say): remembered locally
# for the version, so a signed-in visitor's request does not render that page twice every time.
UNCACHEABLE = Entry(0, [], b"")


def lookup(key: str) -> Entry | None:
    """The entry for ``key`` (which includes the version): this process's copy, else the shared one."""
    entry = LOCAL.get(key)
    if entry is not None:
        return entry
    data = cache.get(key)
    if data is None:
        return None
    try:
        entry = Entry.loads(data)
    except (zlib.error, ValueError, UnicodeDecodeError):
        return None
    LOCAL.set(key, entry, len(entry.body))
    return entry


def store(key: str, entry: Entry) -> None:
    LOCAL.set(key, entry, len(entry.body))
    cache.set(key, entry.dumps(), settings.PAGE_CACHE_SECONDS)


def remember_uncacheable(key: str) -> None:
    LOCAL.set(key, UNCACHEABLE, 0)

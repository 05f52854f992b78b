"""Encryption at rest for patients' data: columns and stored files, with several keys at once.

Keys come from the environment only (``DATA_ENCRYPTION_KEYS``: comma-separated Fernet keys, the first one
encrypts, every one decrypts), never from the database or the repository. Without keys (the embedded default:
``make run``, tests) one development key is derived from the development ``SECRET_KEY``; production refuses to
start without real keys (portal/settings/production.py).

Fernet (AES-128-CBC + HMAC-SHA256, from the PyCA ``cryptography`` package) through ``MultiFernet``:

* a column holds ``enc:v1:<key id>:<Fernet token>``. The key id (8 hex digits, an HMAC of the key) says
  which key encrypted it, so a rotation finds what is left to re-encrypt with one query, and can stop and
  start again at any time (``rotate_columns``).
* a file holds ``EMHF1 <key id>\\n`` and then chunks of 1 MiB, each a Fernet token that carries its own
  position and an "is last" mark, so that a file can be streamed in and out without holding it in memory and
  a reordered or cut file is refused.

Decrypting with keys that do not match fails loudly (``DecryptionError``): data is never shown empty or
garbled. Where a value must be looked up, a keyed hash (``lookup_hash``, HMAC-SHA256) is stored beside it; an
encrypted column cannot be filtered on (``FieldError``). Hash keys come from ``DATA_HASH_KEYS`` (the first makes new
hashes; ``DATA_HASH_KEY`` alone still works as a one-key list); each hash carries the id of its key, lookups
(``hash_lookup``) match hashes made with any configured key, and ``rotation.rehash`` rewrites old ones.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import io
import json
import os
import struct
import tempfile

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models

PREFIX = "enc:v1:"
FILE_MAGIC = b"EMHF1 "
CHUNK = 1024 * 1024
_CHUNK_HEAD = struct.Struct(">QB")  # position, is-last
_LENGTH = struct.Struct(">I")


class DecryptionError(Exception):
    """Encrypted data that none of the configured keys opens (wrong or missing key, or tampered data)."""


# --------------------------------------------------------------------------------- keys


def dev_key(secret_key: str) -> str:
    """The development key: derived from the (development) SECRET_KEY, so ``make run`` and the tests need no
    setup and a database made by one stays readable by the next. Production refuses it."""
    digest = hashlib.sha256(b"emhana-dev-data-key|" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def configured_keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in getattr(settings, "DATA_ENCRYPTION_KEYS", ()) or () if k and k.strip())
    return keys or (dev_key(settings.SECRET_KEY),)


def key_id(key: str | bytes) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, b"emhana key id", hashlib.sha256).hexdigest()[:8]


@functools.lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]):
    try:
        fernets = [Fernet(k) for k in keys]
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("DATA_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes; "
                                   "make one with `python -c 'from cryptography.fernet import Fernet; "
                                   "print(Fernet.generate_key().decode())'`).") from exc
    ids = [key_id(k) for k in keys]
    return MultiFernet(fernets), ids[0], dict(zip(ids, fernets, strict=True))


def keyring():
    """(MultiFernet of every key, id of the key that encrypts, {key id: Fernet})."""
    return _keyring(configured_keys())


def primary_key_id() -> str:
    return keyring()[1]


# --------------------------------------------------------------------------------- lookup hashes


def dev_hash_key(secret_key: str) -> str:
    """The development hash key (derived from the development SECRET_KEY, like ``dev_key``). Production refuses it."""
    return "dev-hash|" + secret_key


def configured_hash_keys() -> tuple[str, ...]:
    """The lookup-hash keys, the current one first: ``DATA_HASH_KEYS`` (a list, or a comma-separated string), else
    ``DATA_HASH_KEY`` as a one-item list (the older setting), else the development key."""
    keys = getattr(settings, "DATA_HASH_KEYS", None) or ()
    if isinstance(keys, str):
        keys = keys.split(",")
    found = tuple(k.strip() for k in keys if k and k.strip())
    if not found:
        single = (getattr(settings, "DATA_HASH_KEY", "") or "").strip()
        found = (single,) if single else ()
    return found or (dev_hash_key(settings.SECRET_KEY),)


def hash_key_id(key: str | bytes) -> str:
    """8 hex digits naming a hash key (an HMAC of a constant: says nothing about the key)."""
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, b"emhana hash key id", hashlib.sha256).hexdigest()[:8]


def hash_key() -> bytes:
    """The key that makes new lookup hashes (the first configured)."""
    return configured_hash_keys()[0].encode()


def current_hash_prefix() -> str:
    """What every lookup hash made with the current key starts with (``<key id>:``)."""
    return hash_key_id(configured_hash_keys()[0]) + ":"


def _normal(value: str) -> str:
    return "".join(ch for ch in (value or "") if ch not in " -\t").upper()


def _hash_with(key: str, normal: str) -> str:
    digest = hmac.new(key.encode(), normal.encode(), hashlib.sha256).digest()
    return f"{hash_key_id(key)}:{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def _legacy_hash_with(key: str, normal: str) -> str:
    # before hash keys could rotate: the bare hex digest, no key id (still matched until re-hashed)
    return hmac.new(key.encode(), normal.encode(), hashlib.sha256).hexdigest()


def lookup_hash(value: str) -> str:
    """A keyed hash of a normalised value (upper case, no spaces or dashes), for finding it without decrypting:
    ``<key id>:<HMAC-SHA256, url-safe base64>`` (52 characters) with the current hash key; "" for an empty value.
    Store it; to *find* a value use ``hash_lookup``, which also matches hashes made with older keys."""
    normal = _normal(value)
    if not normal:
        return ""
    return _hash_with(configured_hash_keys()[0], normal)


def lookup_hashes(value: str) -> list[str]:
    """Every stored form a hash of ``value`` may have while keys rotate: one per configured key, and the older
    bare-hex form (before key ids). Empty for an empty value."""
    normal = _normal(value)
    if not normal:
        return []
    found = []
    for key in configured_hash_keys():
        found += [_hash_with(key, normal), _legacy_hash_with(key, normal)]
    return found


def hash_lookup(hash_field: str, value: str) -> models.Q:
    """A filter that finds rows whose ``hash_field`` holds the hash of ``value`` under any configured key, e.g.
    ``PatientProfile.objects.filter(hash_lookup("passport_number_hash", number))``. An empty value finds nothing."""
    candidates = lookup_hashes(value)
    return models.Q(**{f"{hash_field}__in": candidates}) if candidates else models.Q(pk__in=[])


def hashed_fields():
    """Every (model, hash field name, source field name) kept as a lookup hash, for rotation and the checks.
    A model declares its hashes with ``LOOKUP_HASHES = {"<hash field>": "<field it hashes>"}``."""
    found = []
    for model in apps.get_models():
        for hash_field, source in (getattr(model, "LOOKUP_HASHES", None) or {}).items():
            found.append((model, hash_field, source))
    return found


# --------------------------------------------------------------------------------- values


def encrypt_text(plain: str) -> str:
    multi, kid, _ = keyring()
    return f"{PREFIX}{kid}:{multi.encrypt(plain.encode()).decode()}"


def is_encrypted(stored) -> bool:
    return isinstance(stored, str) and stored.startswith(PREFIX)


def decrypt_text(stored: str) -> str:
    if not is_encrypted(stored):
        raise DecryptionError("The column holds a value that is not encrypted (expected 'enc:v1:…'); run the "
                              "migrations, or `manage.py rotate_data_keys` to encrypt old rows.")
    try:
        kid, token = stored[len(PREFIX):].split(":", 1)
    except ValueError as exc:
        raise DecryptionError("Malformed encrypted value.") from exc
    multi, _, by_id = keyring()
    fernet = by_id.get(kid)
    try:
        return (fernet or multi).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            f"Cannot decrypt a value encrypted with key {kid}: that key is not in DATA_ENCRYPTION_KEYS (configured: "
            f"{', '.join(by_id)}), or the value was altered.") from exc


def reencrypt_text(stored: str) -> str:
    """The same value encrypted with the current first key (for rotation)."""
    return encrypt_text(decrypt_text(stored))


# --------------------------------------------------------------------------------- model fields


class EncryptedMixin:
    """Stores the field's value encrypted in a text column; Python sees the plain value.

    Empty strings and NULL are stored as they are (that a field is empty is not a secret, and it keeps ``blank``
    checks simple). Only ``isnull`` may be used in a query: anything else would compare ciphertexts.
    """

    encrypted = True

    def get_internal_type(self):
        return "TextField"

    def db_type(self, connection):
        return models.TextField().db_type(connection)

    def cast_db_type(self, connection):
        return models.TextField().cast_db_type(connection)

    # plain value <-> text
    def plain_text(self, value) -> str:
        return str(value)

    def from_plain_text(self, text: str):
        return self.to_python(text)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return None if value is None else self._empty()
        return self.from_plain_text(decrypt_text(value))

    def _empty(self):
        return ""

    def get_prep_value(self, value):
        value = self.to_python(value) if not isinstance(value, dict | list) else value
        if value is None:
            return None
        if value == "" and not isinstance(self, EncryptedJSONField):
            return ""
        return encrypt_text(self.plain_text(value))

    def get_db_prep_value(self, value, connection, prepared=False):
        return value if prepared else self.get_prep_value(value)

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise FieldError(f"{self.model.__name__}.{self.name} is encrypted: it cannot be filtered with "
                             f"'{lookup_name}' (keep a keyed hash beside it if it must be looked up).")
        return super().get_lookup(lookup_name)

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return "" if value is None else self.plain_text(value)


class EncryptedCharField(EncryptedMixin, models.CharField):
    # max_length applies to the plain value (forms, validation), not to the column, which is text

    def check(self, **kwargs):
        return [e for e in super().check(**kwargs) if e.id != "fields.E120"]


class EncryptedTextField(EncryptedMixin, models.TextField):
    pass


class EncryptedDateField(EncryptedMixin, models.DateField):
    def plain_text(self, value) -> str:
        return value.isoformat()

    def from_plain_text(self, text: str):
        return datetime.date.fromisoformat(text)

    def _empty(self):
        return None

    def pre_save(self, model_instance, add):
        return getattr(model_instance, self.attname)


class EncryptedJSONField(EncryptedMixin, models.TextField):
    """A JSON document (dict/list/str/number), encrypted as one value."""

    def to_python(self, value):
        if isinstance(value, str) and value[:1] in ("{", "[") and value.strip():
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def plain_text(self, value) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    def from_plain_text(self, text: str):
        return json.loads(text)

    def _empty(self):
        return {}

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})


def encrypted_fields():
    """Every (model, field) stored encrypted, for rotation and the checks."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if getattr(field, "encrypted", False):
                found.append((model, field))
    return found


# --------------------------------------------------------------------------------- files


def _seal(multi_or_fernet, position: int, last: bool, data: bytes) -> bytes:
    token = multi_or_fernet.encrypt(_CHUNK_HEAD.pack(position, 1 if last else 0) + data)
    return _LENGTH.pack(len(token)) + token


def encrypt_stream(source, target) -> str:
    """Encrypt everything ``source`` (a binary file object) reads into ``target``; returns the key id used."""
    multi, kid, _ = keyring()
    target.write(FILE_MAGIC + kid.encode() + b"\n")
    position = 0
    pending = source.read(CHUNK)
    while True:
        following = source.read(CHUNK) if pending else b""
        last = not following
        target.write(_seal(multi, position, last, pending or b""))
        if last:
            return kid
        position += 1
        pending = following


def encrypt_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out)
    return out.getvalue()


def file_key_id(handle) -> str | None:
    """The id of the key that encrypted the file open in ``handle`` (read from its start), or None when it is
    not an encrypted file."""
    handle.seek(0)
    head = handle.read(len(FILE_MAGIC) + 9)
    handle.seek(0)
    if not head.startswith(FILE_MAGIC) or len(head) < len(FILE_MAGIC) + 9:
        return None
    return head[len(FILE_MAGIC):len(FILE_MAGIC) + 8].decode("ascii", "replace")


class DecryptingReader(io.RawIOBase):
    """A read-only binary stream of the plain content of an encrypted file, decrypted chunk by chunk."""

    def __init__(self, raw):
        super().__init__()
        self.raw = raw
        head = raw.read(len(FILE_MAGIC) + 9)
        if not head.startswith(FILE_MAGIC):
            raw.close()
            raise DecryptionError("This stored file is not encrypted (no EMHF1 header); run "
                                  "`manage.py rotate_data_keys` to encrypt old files.")
        self.kid = head[len(FILE_MAGIC):len(FILE_MAGIC) + 8].decode("ascii", "replace")
        multi, _, by_id = keyring()
        self.fernet = by_id.get(self.kid) or multi
        self.position = 0
        self.buffer = b""
        self.done = False

    def readable(self):
        return True

    def _next_chunk(self):
        size_bytes = self.raw.read(_LENGTH.size)
        if len(size_bytes) < _LENGTH.size:
            raise DecryptionError("The stored file is cut short (its last part is missing).")
        (length,) = _LENGTH.unpack(size_bytes)
        token = self.raw.read(length)
        try:
            plain = self.fernet.decrypt(token)
        except InvalidToken as exc:
            raise DecryptionError(f"Cannot decrypt a file encrypted with key {self.kid}: that key is not in "
                                  f"DATA_ENCRYPTION_KEYS, or the file was altered.") from exc
        position, last = _CHUNK_HEAD.unpack_from(plain)
        if position != self.position:
            raise DecryptionError("The stored file's parts are out of order.")
        self.position += 1
        self.done = bool(last)
        self.buffer += plain[_CHUNK_HEAD.size:]

    def readinto(self, b):
        while not self.buffer and not self.done:
            self._next_chunk()
        n = min(len(b), len(self.buffer))
        b[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n

    def close(self):
        try:
            self.raw.close()
        finally:
            super().close()


def open_decrypted(path) -> io.BufferedReader:
    return io.BufferedReader(DecryptingReader(open(path, "rb")), buffer_size=CHUNK)


def decrypt_file_bytes(path) -> bytes:
    with open_decrypted(path) as handle:
        return handle.read()


def reencrypt_file(path) -> bool:
    """Re-encrypt one stored file with the current first key (or encrypt a plain one). Written beside it and
    renamed over it, so an interruption leaves either the old or the new file, both readable. True if changed."""
    primary = primary_key_id()
    with open(path, "rb") as probe:
        kid = file_key_id(probe)
    if kid == primary:
        return False
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".rotate-")
    try:
        with os.fdopen(fd, "wb") as out:
            if kid is None:
                with open(path, "rb") as source:
                    encrypt_stream(source, out)
            else:
                with open_decrypted(path) as source:
                    encrypt_stream(source, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True

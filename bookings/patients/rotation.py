"""Key rotation: re-encrypt every encrypted column and stored file with the first key of DATA_ENCRYPTION_KEYS,
and re-hash every lookup hash with the first key of DATA_HASH_KEYS.

No downtime: while it runs, every value stays readable (all keys decrypt). Resumable: what is left is found from
the data itself (the key id in each value and each file's header), so an interrupted run simply continues
where it stopped, and a second run finds nothing to do. Each batch is its own transaction, and each value is
written only if it has not changed since it was read (a concurrent edit wins, and is already on the new key).

    manage.py rotate_data_keys            # or the Celery task bookings.tasks.rotate_data_keys

The lookup hashes (``crypto.hashed_fields``: the passport number's) rotate the same way with the first key of
DATA_HASH_KEYS: each hash starts with the id of its key, so what is left is one query; each is recomputed from the
decrypted value (the old hash key is not needed for that, only for lookups meanwhile), in batches, written only if
unchanged since read.

    manage.py rotate_data_keys --hashes   # or the Celery task bookings.tasks.rotate_hash_keys
"""

from __future__ import annotations

import logging
import os

from celery import shared_task
from django.db import connection, transaction

from bookings.models import DataExport, MedicalRecord
from bookings.patients import crypto

log = logging.getLogger("emhana.privacy")

BATCH = 200


def _pending_sql(table, column, pk):
    q = connection.ops.quote_name
    return (f"SELECT {q(pk)}, {q(column)} FROM {q(table)} WHERE {q(column)} IS NOT NULL AND {q(column)} <> '' "
            f"AND {q(column)} NOT LIKE %s ORDER BY {q(pk)} LIMIT %s")  # nosec B608 - names from model metadata, quoted


def rotate_columns(batch: int = BATCH, max_batches: int | None = None) -> int:
    """Re-encrypt column values not on the current key; returns how many were rewritten."""
    primary = f"{crypto.PREFIX}{crypto.primary_key_id()}:%"
    q = connection.ops.quote_name
    done = batches = 0
    for model, field in crypto.encrypted_fields():
        table, column, pk = model._meta.db_table, field.column, model._meta.pk.column
        while True:
            if max_batches is not None and batches >= max_batches:
                return done
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_pending_sql(table, column, pk), [primary, batch])
                rows = cursor.fetchall()
                for key, value in rows:
                    fresh = crypto.reencrypt_text(value) if crypto.is_encrypted(value) else crypto.encrypt_text(value)
                    cursor.execute(f"UPDATE {q(table)} SET {q(column)} = %s WHERE {q(pk)} = %s AND {q(column)} = %s",  # nosec B608
                                   [fresh, key, value])
                    done += 1
            batches += 1
            if len(rows) < batch:
                break
    return done


def stored_files():
    """Every file in private storage the application knows of (records and exports)."""
    for model in (MedicalRecord, DataExport):
        storage = model._meta.get_field("file").storage
        for name in model.objects.exclude(file="").values_list("file", flat=True).iterator():
            yield storage.path(name)


def rotate_files(max_files: int | None = None) -> int:
    done = 0
    for path in stored_files():
        if max_files is not None and done >= max_files:
            break
        if os.path.isfile(path) and crypto.reencrypt_file(path):
            done += 1
    return done


def pending() -> dict:
    """What is still on an old key: {"columns": n, "files": n} (0 and 0 when rotation is complete)."""
    primary = f"{crypto.PREFIX}{crypto.primary_key_id()}:%"
    q = connection.ops.quote_name
    columns = 0
    with connection.cursor() as cursor:
        for model, field in crypto.encrypted_fields():
            c = q(field.column)
            cursor.execute(f"SELECT COUNT(*) FROM {q(model._meta.db_table)} WHERE {c} IS NOT NULL AND {c} <> '' "  # nosec B608
                           f"AND {c} NOT LIKE %s", [primary])
            columns += cursor.fetchone()[0]
    primary_id = crypto.primary_key_id()
    files = 0
    for path in stored_files():
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                if crypto.file_key_id(handle) != primary_id:
                    files += 1
    return {"columns": columns, "files": files}


def rotate(batch: int = BATCH) -> dict:
    result = {"columns": rotate_columns(batch=batch), "files": rotate_files()}
    log.info("data keys rotated: %s", result)
    return result


@shared_task(acks_late=True, name="bookings.tasks.rotate_data_keys")
def rotate_data_keys():
    return rotate()


# --------------------------------------------------------------------------------- lookup hashes


def _stale_hashes(model, hash_field):
    """Rows whose hash was not made with the current hash key (an empty hash is an empty value: nothing to do)."""
    return (model._base_manager.exclude(**{hash_field: ""})
            .exclude(**{f"{hash_field}__startswith": crypto.current_hash_prefix()}))


def rehash(batch: int = BATCH, max_batches: int | None = None) -> int:
    """Recompute every lookup hash not made with the current hash key; returns how many were rewritten.

    Batches in primary-key order, each its own transaction; a hash is written only if it is still the one read
    (a concurrent save has already written a current one). Stopped at any point, the next run finds what is left
    by the key id at the start of each hash."""
    done = batches = 0
    for model, hash_field, source in crypto.hashed_fields():
        last = None
        while True:
            if max_batches is not None and batches >= max_batches:
                return done
            with transaction.atomic():
                rows = _stale_hashes(model, hash_field).order_by("pk")
                if last is not None:
                    rows = rows.filter(pk__gt=last)
                rows = list(rows.values_list("pk", hash_field, source)[:batch])  # the source decrypts on load
                for key, old, value in rows:
                    fresh = crypto.lookup_hash(value or "")
                    done += model._base_manager.filter(pk=key, **{hash_field: old}).update(**{hash_field: fresh})
            batches += 1
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return done


def pending_hashes() -> int:
    """How many lookup hashes are still on an old hash key (0 when the hash rotation is complete)."""
    return sum(_stale_hashes(model, hash_field).count() for model, hash_field, _source in crypto.hashed_fields())


def rotate_hashes(batch: int = BATCH) -> dict:
    result = {"hashes": rehash(batch=batch)}
    log.info("lookup hashes rotated: %s", result)
    return result


@shared_task(acks_late=True, name="bookings.tasks.rotate_hash_keys")
def rotate_hash_keys():
    return rotate_hashes()

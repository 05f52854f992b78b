"""`make serve` — the production shape (gunicorn + Celery worker + Celery beat under honcho, production settings,
PostgreSQL + Redis) — started by a test on free ports, with its own database and Redis databases.

- PostgreSQL database ``emhana_serve_e2e`` (dropped and made again each run), Redis DBs 12 (cache) and 13 (broker).
- Data: the same commands as ``make run`` (``migrate``, ``load_catalogue``, ``load_demo``), run with the embedded
  settings before the production processes start, because production refuses ``load_demo``: the catalogue and
  the demo clinics' resources and hours, so there are slots to book. The demo accounts it also creates stay (they
  own demo bookings); production refuses their logins, and this journey never uses them.
- Settings production needs: a random ``SECRET_KEY``, ``ALLOWED_HOSTS``, Stripe keys of the real form, random
  ``DATA_ENCRYPTION_KEYS``/``DATA_HASH_KEY`` (the same ones for loading the data and for serving it).
  Production refuses ``STRIPE_API_BASE`` and the Stripe.js test double, so these keys point at real Stripe,
  which no test may reach: journeys stop at the checkout page (the browser blocks everything not on loopback).
  ``SECURE_SSL_REDIRECT=false``: there is no TLS proxy in front here (everything else secure stays on:
  secure cookies, which chromium keeps for http://127.0.0.1, CSP, no DEBUG).

PostgreSQL or Redis missing is a failure, never a skip.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = str(ROOT / ".venv" / "bin" / "python")
DB_NAME = "emhana_serve_e2e"
PG = os.environ.get("EMHANA_SERVE_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("EMHANA_SERVE_REDIS", "redis://127.0.0.1:6379")
LANGS = ("en", "ru", "zh-hans")

# One process (Django starts once): the data `make run` loads, then the pages to visit, printed.
DATA_SCRIPT = """
import json
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("load_catalogue", verbosity=0)
call_command("load_demo", verbosity=0)
from urllib.parse import unquote
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import translation
from catalog.models import ServicePage, SpecialtyIndexPage
demo = get_user_model().objects.filter(Q(email__iendswith="@emhana.example")
                                       | Q(emailaddress__email__iendswith="@emhana.example")).distinct().count()
pet = ServicePage.objects.live().get(slug_en="pet-ct-fdg")
urls = {}
for lang in __LANGS__:
    with translation.override(lang):
        urls[lang] = {"home": f"/{lang}/",
                      "catalogue": unquote(SpecialtyIndexPage.objects.live().first().url),
                      "service": unquote(ServicePage.objects.get(pk=pet.pk).url),
                      "service_title": ServicePage.objects.get(pk=pet.pk).title}
print("URLS=" + json.dumps({"urls": urls, "demo_accounts": demo}))
""".replace("__LANGS__", repr(LANGS))


@dataclass
class Serve:
    base: str
    log_path: Path
    urls: dict
    timings: dict

    def log(self, offset: int = 0) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[offset:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(cmd: list[str], env: dict, what: str, timeout: float = 600) -> str:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)  # noqa: S603
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def _fresh_database() -> None:
    import psycopg

    try:
        with psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG} is needed for the make serve tests: {exc}")


def _fresh_redis() -> None:
    import redis

    for db in (12, 13):
        try:
            redis.Redis.from_url(f"{REDIS}/{db}", socket_connect_timeout=5).flushdb()
        except redis.RedisError as exc:
            pytest.fail(f"Redis at {REDIS} is needed for the make serve tests: {exc}")


def _environment(port: int) -> dict:
    """The parent's environment without anything that would point the server at another database, cache,
    broker, Stripe or settings module (CI exports its own), plus what production needs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRIPE_", "CELERY_", "CACHE_", "REDIS_", "DJANGO_", "EMAIL_", "EMHANA_",
                                "DATABASE_", "SECRET_", "ALLOWED_", "CSRF_", "SITE_", "SECURE_", "DEBUG",
                                "LOG_", "WEB_", "WORKER_", "TRUSTED_", "PAGE_CACHE", "DATA_"))}
    return env | {
        # patients' data keys: the same for loading the data (embedded settings) and for serving it (production)
        "DATA_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DATA_HASH_KEY": secrets.token_urlsafe(32),
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "CACHE_URL": f"{REDIS}/12",
        "CELERY_BROKER_URL": f"{REDIS}/13",
        "SITE_URL": f"http://127.0.0.1:{port}",
    }


def start(tmp: Path) -> tuple[subprocess.Popen, Serve]:
    timings = {}
    t0 = time.monotonic()
    port = free_port()
    env = _environment(port)
    _fresh_database()
    _fresh_redis()
    out = _run([PY, "manage.py", "shell", "-c", DATA_SCRIPT], env, "migrate, load_catalogue, load_demo")
    info = json.loads(out.split("URLS=", 1)[1].strip())
    timings["data_s"] = round(time.monotonic() - t0, 1)

    serve_env = env | {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        # the real form of Stripe test keys, never used: nothing here reaches Stripe
        "STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12),
        "STRIPE_PUBLISHABLE_KEY": "pk_test_" + secrets.token_hex(12),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(12),
        # patients' data keys (production refuses to start without real ones): env's, which loaded the data
        "WEB_CONCURRENCY": "2",
        "WORKER_CONCURRENCY": "1",
    }
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / "make-serve.log"
    t1 = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(["make", "serve", "HOST=127.0.0.1", f"PORT={port}"], cwd=ROOT, env=serve_env,  # noqa: S603,S607
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    serve = Serve(f"http://127.0.0.1:{port}", log_path, info["urls"], timings)
    serve.timings["demo_accounts"] = info["demo_accounts"]
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"make serve exited ({proc.returncode}):\n{serve.log()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{serve.base}/readyz", timeout=3) as r:  # noqa: S310 (loopback)
                if r.status == 200 and re.search(r"celery@\S+ ready\.", serve.log()) and "beat: Starting" in serve.log():
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"make serve was not ready within 180 s:\n{serve.log()[-4000:]}")
        time.sleep(0.5)
    timings["serve_start_s"] = round(time.monotonic() - t1, 1)
    (tmp / "timings.json").write_text(json.dumps(timings, indent=2), encoding="utf-8")
    return proc, serve


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)

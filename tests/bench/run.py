"""Emhana benchmarks: `make bench` or `python -m tests.bench.run`.

1. Builds a throwaway database (SQLite in a temp dir; PostgreSQL when BENCH_DATABASE_URL is set, e.g.
   ``BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/emhana_bench``: that database is dropped and
   re-created, so its name must contain "bench"), migrates it and loads the catalogue and demo clinics.
2. Starts gunicorn on 127.0.0.1 (DEBUG off, development environment) and measures requests/s and p50/p95
   latency of the health check, public pages (served from the anonymous page cache, and rendered: a
   session cookie bypasses that cache) and the slots API, with a bounded keep-alive load client.
3. Slot search at scale: a year of confirmed bookings on 200 resources, then the query count and the
   in-process time of ``services.offering_slots`` over 31 days.
4. The hold race: 200 signed-in patients POST /api/v1/holds for the same slot at once; exactly one wins.

Writes bench-results/<UTC timestamp>.json and prints a table. Gunicorn is always stopped.
Knobs: BENCH_SECONDS (per URL, default 3), BENCH_CONCURRENCY (8), BENCH_WORKERS (2), BENCH_RACERS (200),
BENCH_RESOURCES (200), BENCH_BOOKINGS_PER_DAY (4), BENCH_KEEP_DB (keep the database).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
RACERS = int(os.environ.get("BENCH_RACERS", "200"))
RESOURCES = int(os.environ.get("BENCH_RESOURCES", "200"))
BOOKINGS_PER_DAY = int(os.environ.get("BENCH_BOOKINGS_PER_DAY", "4"))
SECRET_KEY = "bench-only-not-a-secret-" + "x" * 40
PG_NOTE = ("The race number on PostgreSQL (row locks + exclusion constraint) comes from\n"
           "  BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/emhana_bench make bench")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ database


def pg_admin(url: str):
    """(psycopg connection to the server's maintenance database, database name) for a postgres:// URL."""
    import psycopg

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if "bench" not in name:
        raise SystemExit(f"BENCH_DATABASE_URL must name a throwaway database with 'bench' in it, not {name!r}")
    conn = psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                           user=unquote(parts.username or "postgres"),
                           password=unquote(parts.password) if parts.password else None,
                           dbname="postgres", autocommit=True)
    return conn, name


def pg_recreate(url: str) -> None:
    conn, name = pg_admin(url)
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(url: str) -> None:
    conn, name = pg_admin(url)
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(db_url: str) -> dict:
    env = dict(os.environ)
    env.pop("DJANGO_ENV", None)  # development: no SSL redirect on plain http
    env.update(DATABASE_URL=db_url, DEBUG="false", ALLOWED_HOSTS=HOST, SECRET_KEY=SECRET_KEY,
               DJANGO_SETTINGS_MODULE="portal.settings.dev", PYTHONUNBUFFERED="1")
    return env


def manage(command: str, **options) -> float:
    """Run a management command in this process (same DATABASE_URL as gunicorn), its chatter captured."""
    import contextlib
    import io

    from django.core.management import call_command

    t0 = time.monotonic()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            call_command(command, verbosity=0, stdout=out, stderr=out, **options)
    except BaseException:
        print(out.getvalue()[-3000:])
        raise
    return time.monotonic() - t0


# ------------------------------------------------------------------------------------ load client


def request(conn: http.client.HTTPConnection, method: str, path: str, headers=None, body=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data, resp


def load(port: int, path: str, seconds: float = SECONDS, concurrency: int = CONCURRENCY, headers=None) -> dict:
    """Hammer one URL with ``concurrency`` keep-alive clients for ``seconds``; latency percentiles in ms."""
    headers = {"Host": f"{HOST}:{port}", **(headers or {})}
    warm = http.client.HTTPConnection(HOST, port, timeout=30)
    first_status = None
    for _ in range(2 * WORKERS + 2 if not headers.get("Cookie") else 1):  # fill every worker's page cache
        first_status, _body, _r = request(warm, "GET", path, headers)
    warm.close()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start_gate = threading.Event()
    deadline = [0.0]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        start_gate.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= deadline[0]:
                break
            try:
                status, _body, _r = request(conn, "GET", path, headers)
                if status != 200:
                    errors[i] += 1
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                continue
            latencies[i].append((time.perf_counter() - t0) * 1000)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start_gate.set()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.perf_counter() - began
    lat = sorted(x for per in latencies for x in per)
    n = len(lat)

    def pct(p):
        return round(lat[min(n - 1, int(p * n))], 2) if n else None

    return {"path": path, "first_status": first_status, "requests": n, "errors": sum(errors),
            "rps": round(n / elapsed, 1), "p50_ms": pct(0.50), "p95_ms": pct(0.95),
            "seconds": round(elapsed, 2), "concurrency": concurrency}


# ------------------------------------------------------------------------------------ in-process Django


def django_in_process(env: dict) -> None:
    for key in ("DATABASE_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"):
        os.environ[key] = env[key]
    os.environ.pop("DJANGO_ENV", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def pick_targets() -> dict:
    """The PET-CT service's URLs in ru and zh-hans, and a directly bookable offering with a calendar."""
    from django.utils import translation

    from bookings.models import OfferingResource
    from catalog.models import Offering, ServicePage, SpecialtyIndexPage

    linked = OfferingResource.objects.values("offering_id")
    offerings = (Offering.objects.filter(is_active=True, review_required=False, sessions=1, id__in=linked,
                                         page__live=True, clinic__live=True)
                 .select_related("page", "clinic").order_by("id"))
    offering = offerings.filter(page__slug_en="pet-ct-fdg").first() or offerings.first()
    if offering is None:
        raise SystemExit("No directly bookable single-session offering with resources: is the demo loaded?")
    urls = {}
    for lang in ("en", "ru", "zh-hans"):
        with translation.override(lang):
            urls[f"service_{lang}"] = ServicePage.objects.get(pk=offering.page_id).url
            urls[f"listing_{lang}"] = SpecialtyIndexPage.objects.live().first().url
    return {"offering": offering, "urls": urls}


def ascii_path(url: str) -> str:
    return quote(unquote(url), safe="/?=&%:-._~")


# ------------------------------------------------------------------------------------ slot search at scale


def next_id(model):
    """Explicit ids for raw inserts (sequences are reset afterwards)."""
    import itertools

    from django.db.models import Max

    return itertools.count((model.objects.aggregate(m=Max("id"))["m"] or 0) + 1)


def insert_rows(template, rows: list[dict]) -> None:
    """INSERT many rows of one model quickly: the template instance's database values, overridden per row."""
    from django.db import connection

    fields = list(template._meta.concrete_fields)
    base = {}
    for f in fields:
        value = f.pre_save(template, True)
        base[f.attname] = None if f.primary_key else f.get_db_prep_save(value, connection)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {qn(template._meta.db_table)} ({columns}) VALUES ({marks})"
    names = [f.attname for f in fields]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # COPY: an order of magnitude faster than executemany there
            copy_sql = f"COPY {qn(template._meta.db_table)} ({columns}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(tuple(row.get(n, base[n]) for n in names))
        else:
            cursor.executemany(sql, [tuple(row.get(n, base[n]) for n in names) for row in rows])


def reset_sequences(models) -> None:
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)



def slot_scale(clinic, page, now: datetime) -> dict:
    """A year of confirmed bookings on RESOURCES resources; queries and time of a 31-day slot search."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from bookings import services
    from bookings.availability import local_day_bounds
    from bookings.models import Allocation, Appointment, Booking, OfferingResource, Resource, WeeklyHours
    from catalog.models import Offering

    t_setup = time.monotonic()
    tz = clinic.tz
    user = get_user_model().objects.create_user("bench-scale-patient", "bench-scale@example.com", None)

    def offering(n_links):
        return Offering.objects.create(
            page=page, clinic=clinic, currency="KZT", price=10_000_000, deposit=1_000_000, sessions=1,
            session_minutes=60, spacing=Offering.SINGLE, review_required=False, notice_hours=0, horizon_days=400,
            slot_step_minutes=30, is_active=True, is_demo=True, sort_order=900 + n_links)

    with transaction.atomic():
        resources = Resource.objects.bulk_create(
            [Resource(clinic=clinic, name=f"Bench scanner {i:03d}", capacity=1) for i in range(RESOURCES)])
        WeeklyHours.objects.bulk_create([WeeklyHours(resource=r, weekday=d, start="08:00", end="20:00")
                                         for r in resources for d in range(5)])
        one = offering(1)
        wide = offering(RESOURCES)
        OfferingResource.objects.bulk_create([OfferingResource(offering=one, resource=resources[0])]
                                             + [OfferingResource(offering=wide, resource=r) for r in resources])

    first = (now.astimezone(tz) + timedelta(days=3)).date()
    last = first + timedelta(days=30)

    def measure(off, repeat=5):
        with CaptureQueriesContext(connection) as ctx:
            options = services.offering_slots(off, first, last, now=now)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            services.offering_slots(off, first, last, now=now)
            times.append((time.perf_counter() - t0) * 1000)
        return {"queries": len(ctx.captured_queries), "slots": len(options),
                "ms_median": round(statistics.median(times), 2), "ms_max": round(max(times), 2)}

    before = {"one_resource": measure(one), f"all_{RESOURCES}_resources": measure(wide, repeat=3)}

    # A year of confirmed bookings: BOOKINGS_PER_DAY one-hour sessions per working day on every resource,
    # at the same local hours everywhere (so the all-resources offering still has free slots to find).
    hours = [9, 11, 14, 16, 18, 12, 15, 10][:BOOKINGS_PER_DAY]
    days = [now.astimezone(tz).date() + timedelta(days=i) for i in range(365)]
    days = [d for d in days if d.weekday() < 5]
    starts = []
    for d in days:
        midnight = local_day_bounds(d, tz)[0]
        for h in hours:
            s = midnight + timedelta(hours=h)
            starts.append((s.astimezone(UTC), (s + timedelta(hours=1)).astimezone(UTC)))
    t_rows = time.monotonic()
    booking_ids = next_id(Booking)
    appointment_ids = next_id(Appointment)
    allocation_ids = next_id(Allocation)
    template_booking = Booking(user=user, offering=one, clinic=clinic, state=Booking.CONFIRMED, currency="KZT",
                               price=10_000_000, deposit=1_000_000, service_title="Bench scan", language="en")
    template_appointment = Appointment(offering=one, seq=1, start=now, end=now, status=Appointment.BOOKED)
    template_allocation = Allocation(resource=resources[0], unit=0, start=now, end=now, live=True, expires_at=None)
    dt = Allocation._meta.get_field("start")
    total = 0
    per_chunk = max(1, 25_000 // max(1, len(starts)))
    for lo in range(0, len(resources), per_chunk):
        b_rows, ap_rows, al_rows = [], [], []
        for r in resources[lo:lo + per_chunk]:
            for s, e in starts:
                b_id, ap_id, al_id = next(booking_ids), next(appointment_ids), next(allocation_ids)
                s_db, e_db = dt.get_db_prep_save(s, connection), dt.get_db_prep_save(e, connection)
                b_rows.append({"id": b_id, "reference": f"BN{b_id:09d}"})
                ap_rows.append({"id": ap_id, "booking_id": b_id, "start": s_db, "end": e_db})
                al_rows.append({"id": al_id, "appointment_id": ap_id, "resource_id": r.id, "start": s_db,
                                "end": e_db})
        with transaction.atomic():
            insert_rows(template_booking, b_rows)
            insert_rows(template_appointment, ap_rows)
            insert_rows(template_allocation, al_rows)
        total += len(al_rows)
    reset_sequences([Booking, Appointment, Allocation])
    rows_seconds = time.monotonic() - t_rows
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    after = {"one_resource": measure(one), f"all_{RESOURCES}_resources": measure(wide, repeat=3)}
    return {"resources": RESOURCES, "confirmed_bookings": total, "bookings_per_working_day": BOOKINGS_PER_DAY,
            "window_days": (last - first).days + 1, "insert_seconds": round(rows_seconds, 1),
            "setup_seconds": round(time.monotonic() - t_setup, 1), "empty_calendars": before,
            "year_of_bookings": after}


# ------------------------------------------------------------------------------------ the hold race


def race_sessions(n: int) -> list[tuple[str, str]]:
    """n patients signed in: (sessionid, csrf secret) each, made in-process in the bench database."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from django.middleware.csrf import _get_new_csrf_string

    User = get_user_model()
    password = make_password(None)
    with transaction.atomic():
        users = User.objects.bulk_create([User(username=f"bench-racer-{i:03d}", email=f"racer{i}@bench.example",
                                               password=password) for i in range(n)])
        out = []
        for user in users:
            store = SessionStore()
            store[SESSION_KEY] = str(user.pk)
            store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store.create()
            out.append((store.session_key, _get_new_csrf_string()))
    return out


def hold_race(port: int, offering_id: int, sessions: list[tuple[str, str]]) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    today = date.today()
    status, body, _r = request(conn, "GET", f"/api/v1/offerings/{offering_id}/slots?start={today}"
                                             f"&end={today + timedelta(days=14)}")
    conn.close()
    slots = json.loads(body)["slots"] if status == 200 else []
    if not slots:
        return {"error": f"no free slot to race for (status {status})"}
    start = slots[0]["start"]
    payload = json.dumps({"offering": offering_id, "start": start, "client_key": "race"})
    results: list[tuple[int, str, float] | None] = [None] * len(sessions)
    barrier = threading.Barrier(len(sessions) + 1)
    t_start = [0.0]

    def racer(i: int, sessionid: str, csrf: str) -> None:
        c = http.client.HTTPConnection(HOST, port, timeout=120)
        headers = {"Content-Type": "application/json", "Cookie": f"sessionid={sessionid}; csrftoken={csrf}",
                   "X-CSRFToken": csrf, "Origin": f"http://{HOST}:{port}", "Referer": f"http://{HOST}:{port}/"}
        try:
            c.connect()
        except OSError:
            pass
        barrier.wait()
        try:
            st, data, _resp = request(c, "POST", "/api/v1/holds", headers, payload)
            try:
                code = json.loads(data).get("code", "") if st != 201 else "won"
            except ValueError:
                code = data[:80].decode(errors="replace")
            results[i] = (st, code, time.perf_counter())
        except (OSError, http.client.HTTPException) as exc:
            results[i] = (0, exc.__class__.__name__, time.perf_counter())
        finally:
            c.close()

    threads = [threading.Thread(target=racer, args=(i, s, c), daemon=True) for i, (s, c) in enumerate(sessions)]
    for t in threads:
        t.start()
    barrier.wait()
    t_start[0] = time.perf_counter()
    for t in threads:
        t.join(150)
    done = [r for r in results if r is not None]
    winners = sum(1 for st, _c, _t in done if st == 201)
    clean = sum(1 for st, code, _t in done if st == 409 and code == "taken")
    other: dict[str, int] = {}
    for st, code, _t in done:
        if st not in (201,) and not (st == 409 and code == "taken"):
            other[f"{st} {code}"] = other.get(f"{st} {code}", 0) + 1
    other_missing = len(sessions) - len(done)
    if other_missing:
        other["no answer"] = other_missing

    from bookings.models import Appointment

    live_holds = Appointment.objects.filter(offering_id=offering_id, start=start, status=Appointment.HELD).count()
    return {"offering": offering_id, "slot": start, "racers": len(sessions), "winners": winners,
            "clean_409": clean, "errors": sum(other.values()), "error_kinds": other,
            "held_appointments_in_db": live_holds,
            "all_answered_seconds": round(max((t for _s, _c, t in done), default=t_start[0]) - t_start[0], 2)}


# ------------------------------------------------------------------------------------ report


def table(results: dict) -> str:
    lines = []
    http_rows = results["http"]
    floor = next((r["rps"] for r in http_rows if r["name"] == "/healthz"), None)
    lines.append(f"Emhana bench  {results['timestamp']}  database={results['database']}  gunicorn -w {WORKERS} "
                 f"--threads 1  client={CONCURRENCY} concurrent x {SECONDS:g}s")
    lines.append("")
    head = f"{'endpoint':34} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'vs /healthz':>11} {'n':>6} {'err':>4}"
    lines.append(head)
    lines.append("-" * len(head))
    for r in http_rows:
        ratio = f"{floor / r['rps']:.1f}x" if floor and r["rps"] else "-"
        lines.append(f"{r['name'][:34]:34} {r['rps']:>8} {r['p50_ms']!s:>8} {r['p95_ms']!s:>8} {ratio:>11} "
                     f"{r['requests']:>6} {r['errors']:>4}")
    lines.append("  (cached = anonymous page cache; rendered = a session cookie bypasses it; 'vs /healthz' = how many"
                 " /healthz requests fit in the time of one)")
    s = results.get("slot_scale")
    if s:
        lines.append("")
        lines.append(f"Slot search over {s['window_days']} days: {s['confirmed_bookings']} confirmed bookings on "
                     f"{s['resources']} resources ({s['bookings_per_working_day']}/working day for a year, inserted "
                     f"in {s['insert_seconds']} s)")
        head = f"{'offering':28} {'calendar':18} {'queries':>8} {'slots':>6} {'ms/call':>9} {'ms max':>8}"
        lines.append(head)
        lines.append("-" * len(head))
        for phase in ("empty_calendars", "year_of_bookings"):
            for name, m in s[phase].items():
                lines.append(f"{name:28} {phase.replace('_', ' '):18} {m['queries']:>8} {m['slots']:>6} "
                             f"{m['ms_median']:>9} {m['ms_max']:>8}")
    r = results.get("race")
    if r:
        lines.append("")
        if "error" in r:
            lines.append(f"Hold race: {r['error']}")
        else:
            ok = "OK" if r["winners"] == 1 and r["errors"] == 0 else "FAIL"
            lines.append(f"Hold race [{ok}]: {r['racers']} concurrent POST /api/v1/holds for offering {r['offering']} "
                         f"at {r['slot']}")
            lines.append(f"  winners {r['winners']} (must be 1)   clean 409 'taken' {r['clean_409']}   errors "
                         f"{r['errors']} (must be 0) {r['error_kinds'] or ''}")
            lines.append(f"  all answered in {r['all_answered_seconds']} s; held appointments for that slot in the "
                         f"database: {r['held_appointments_in_db']}")
    if results["database"] == "sqlite":
        lines.append("")
        lines.append(PG_NOTE)
    lines.append("")
    lines.append(f"phases: {results['phases']}  total {results['total_seconds']} s")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main


def main() -> int:
    t_total = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tmp = tempfile.mkdtemp(prefix="emhana-bench-")
    pg_url = os.environ.get("BENCH_DATABASE_URL", "").strip()
    db_url = pg_url or f"sqlite:///{tmp}/bench.sqlite3"
    vendor = "postgresql" if pg_url else "sqlite"
    env = server_env(db_url)
    phases: dict[str, float] = {}
    results: dict = {"timestamp": stamp, "database": vendor, "workers": WORKERS, "concurrency": CONCURRENCY,
                     "seconds_per_url": SECONDS}
    gunicorn = None
    try:
        if pg_url:
            pg_recreate(pg_url)
        log(f"building the {vendor} database ({'BENCH_DATABASE_URL' if pg_url else tmp})")
        django_in_process(env)
        phases["migrate"] = round(manage("migrate", interactive=False), 1)
        phases["load_catalogue"] = round(manage("load_catalogue"), 1)
        phases["load_demo"] = round(manage("load_demo"), 1)
        log(f"database ready {phases}")
        targets = pick_targets()
        offering = targets["offering"]
        urls = targets["urls"]
        sessions = race_sessions(RACERS)

        port = free_port()
        log_path = Path(tmp) / "gunicorn.log"
        gunicorn = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "portal.wsgi:application", "-b", f"{HOST}:{port}", "-w", str(WORKERS),
             "--threads", "1", "--backlog", "2048", "--timeout", "120"],
            cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.monotonic()
        while True:
            try:
                c = http.client.HTTPConnection(HOST, port, timeout=2)
                if request(c, "GET", "/healthz")[0] == 200:
                    c.close()
                    break
            except OSError:
                pass
            if gunicorn.poll() is not None or time.monotonic() - t0 > 60:
                print(log_path.read_text()[-3000:])
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)
        phases["gunicorn_start"] = round(time.monotonic() - t0, 1)
        log(f"gunicorn on {HOST}:{port}; measuring {SECONDS:g}s per URL")

        today = date.today() + timedelta(days=3)
        slots_path = f"/api/v1/offerings/{offering.id}/slots?start={today}&end={today + timedelta(days=30)}"
        nocache = {"Cookie": "sessionid=bench-bypasses-the-page-cache"}
        plan = [
            ("/healthz", "/healthz", None),
            ("home /en/ (cached)", "/en/", None),
            ("home /en/ (rendered)", "/en/", nocache),
            ("listing ru (cached)", ascii_path(urls["listing_ru"]), None),
            ("listing ru (rendered)", ascii_path(urls["listing_ru"]), nocache),
            ("listing zh-hans (cached)", ascii_path(urls["listing_zh-hans"]), None),
            ("service ru (cached)", ascii_path(urls["service_ru"]), None),
            ("service ru (rendered)", ascii_path(urls["service_ru"]), nocache),
            ("service zh-hans (cached)", ascii_path(urls["service_zh-hans"]), None),
            (f"API slots, 31 days (#{offering.id})", slots_path, None),
        ]
        t0 = time.monotonic()
        rows = []
        for name, path, headers in plan:
            row = load(port, path, headers=headers)
            row["name"] = name
            rows.append(row)
            log(f"{name}: {row['rps']} req/s p50 {row['p50_ms']} ms p95 {row['p95_ms']} ms "
                f"(status {row['first_status']}, errors {row['errors']})")
        results["http"] = rows
        results["urls"] = {name: path for name, path, _h in plan}
        phases["http"] = round(time.monotonic() - t0, 1)

        t0 = time.monotonic()
        from django.utils import timezone

        results["slot_scale"] = slot_scale(offering.clinic, offering.page, timezone.now())
        phases["slot_scale"] = round(time.monotonic() - t0, 1)
        log(f"slot scale done in {phases['slot_scale']} s")

        t0 = time.monotonic()
        results["race"] = hold_race(port, offering.id, sessions)
        phases["race"] = round(time.monotonic() - t0, 1)
        log(f"race: {results['race']}")
    finally:
        if gunicorn is not None:
            try:
                os.killpg(gunicorn.pid, signal.SIGTERM)
                gunicorn.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(gunicorn.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 — Django may not be set up yet
            pass
        if pg_url and not os.environ.get("BENCH_KEEP_DB"):
            try:
                pg_drop(pg_url)
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop the bench database: {exc}")
        if not os.environ.get("BENCH_KEEP_DB"):
            shutil.rmtree(tmp, ignore_errors=True)

    results["phases"] = phases
    results["total_seconds"] = round(time.monotonic() - t_total, 1)
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False))
    print()
    print(table(results))
    print(f"\nwritten {out.relative_to(ROOT)}")
    race = results.get("race") or {}
    return 0 if race.get("winners") == 1 and race.get("errors") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""PostgreSQL, then Redis, stopped under load and started again; gunicorn is never restarted.

While one is down every answer is a 200 or a clean 503 — a short page in the visitor's language saying nothing is
lost and to try again, with ``Retry-After`` (JSON for the API) — never a 500 and never a dropped connection;
``/readyz`` says which service is down. When it is back, every page answers 200 again by itself.

Redis down: Redis holds the page cache, the rate limits and the task queue, so the pages that need it (every
anonymous page goes through the page cache; every write checks a rate limit) answer the clean 503 rather than
rendering around it: serving the uncached pages from PostgreSQL alone would put the whole anonymous load on the
database at once (cached pages are ~50x cheaper) and would run logins and bookings without their rate limits.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from .stack import call, wait_for

pytestmark = pytest.mark.faults

RU_MESSAGE = "Сайт ненадолго недоступен"
ZH_MESSAGE = "网站暂时无法访问"
EN_MESSAGE = "Nothing you entered is lost"


class Load:
    """Clients hammering a mix of URLs on every gunicorn instance; each answer is kept with its time."""

    def __init__(self, stack, patient, clients: int = 6):
        offering = stack.offering["id"]
        self.stack = stack
        cookie = {"Cookie": f"sessionid={patient.sessionid}"}
        self.targets = [
            ("anonymous page (cached)", "/en/", {}),
            ("anonymous page, zh-hans (cached)", "/zh-hans/", {}),
            ("signed-in page, ru (rendered)", "/ru/", cookie),
            ("signed-in dashboard", "/en/my/", cookie),
            ("slots API", f"/api/v1/offerings/{offering}/slots?start={stack.slot_day}&end={stack.slot_day}", {}),
            ("readyz", "/readyz", {}),
        ]
        self.results: list[tuple[float, str, int, dict, bytes]] = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(clients)]

    def client(self, i: int) -> None:
        n = i
        while not self.stop_flag.is_set():
            name, path, headers = self.targets[n % len(self.targets)]
            port = self.stack.web_ports[n % len(self.stack.web_ports)]
            n += 1
            t0 = time.monotonic()
            status, h, body = call(port, "GET", path, headers, timeout=30)
            h["_seconds"] = time.monotonic() - t0
            with self.lock:
                self.results.append((time.monotonic(), name, status, h, body))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(40)

    def since(self, t0: float, t1: float | None = None):
        with self.lock:
            return [r for r in self.results if r[0] >= t0 and (t1 is None or r[0] <= t1)]


def gunicorn_pids(stack) -> dict[str, list[int]]:
    return {web.name: [web.pid, *sorted(web.children())] for web in stack.webs}


def slowest(rows) -> float:
    return round(max((h["_seconds"] for _t, _n, _s, h, _b in rows), default=0.0), 2)


def assert_clean(rows, what: str) -> Counter:
    """Every answer a 200 or a clean 503; returns the (target, status) counts."""
    counts = Counter((name, status) for _t, name, status, _h, _b in rows)
    bad = [(name, status, body[:300]) for _t, name, status, _h, body in rows if status not in (200, 503)]
    assert not bad, f"{what}: answers other than 200/503: {bad[:5]} (counts {dict(counts)})"
    for _t, name, status, h, body in rows:
        if status != 503:
            continue
        assert h.get("retry-after", "").isdigit(), f"{what}: a 503 from {name} without Retry-After"
        if name == "readyz":
            continue
        if name == "slots API":
            problem = json.loads(body)
            assert problem["code"] == "unavailable" and EN_MESSAGE in problem["message"], problem
        else:
            text = body.decode()
            assert h["content-type"].startswith("text/html") and "<h1>" in text, text[:300]
            expected = {"anonymous page, zh-hans (cached)": ZH_MESSAGE, "signed-in page, ru (rendered)": RU_MESSAGE}
            assert expected.get(name, EN_MESSAGE) in text, f"{name}: not the translated retry message: {text[:400]}"
            assert "Traceback" not in text and "Server Error" not in text
    return counts


def wait_all_ok(load, timeout: float) -> float:
    """Seconds from now until one full round of every target answered 200 (recovery)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.25)
        recent = load.since(time.monotonic() - 0.75)
        ok = {name for _t, name, status, _h, _b in recent if status == 200}
        failing = {name for _t, name, status, _h, _b in recent if status != 200}
        if len(ok) == len(load.targets) and not failing:
            return round(time.monotonic() - t0, 2)
    raise AssertionError(f"not recovered within {timeout} s: {Counter((n, s) for _t, n, s, _h, _b in load.since(time.monotonic() - 2))}")


def readyz(stack) -> tuple[int, dict, dict]:
    status, h, body = call(stack.web_ports[0], "GET", "/readyz")
    return status, h, json.loads(body)


def test_database_and_cache_outages_under_load(stack, timings, request):
    from datetime import date, timedelta

    stack.slot_day = date.today() + timedelta(days=7)
    patient = stack.patients(1, "outage")[0]
    slots = [stack.next_slot(), stack.next_slot()]  # asked while the database is up
    before = gunicorn_pids(stack)

    with Load(stack, patient) as load:
        # warm: every target answered 200 on every instance (first renders fill each worker's caches)
        wait_for(lambda: len({name for _t, name, status, _h, _b in load.since(0) if status == 200})
                 == len(load.targets), 60, what="every target answering")
        time.sleep(1.0)
        healthy = load.since(0)
        counts = Counter((name, status) for _t, name, status, _h, _b in healthy)
        assert all(status == 200 for _t, _n, status, _h, _b in healthy), dict(counts)

        # ---------------------------------------------------------------- PostgreSQL down
        t_down = time.monotonic()
        request.addfinalizer(lambda: stack.pg.running() or stack.pg.start())  # a failure below must not leave it down
        stack.pg.stop("fast")
        timings["pg_stop_s"] = round(time.monotonic() - t_down, 2)
        time.sleep(3.0)
        status, h, ready = readyz(stack)
        assert status == 503 and ready["database"].startswith("error") and ready["cache"] == "ok", ready
        assert h["retry-after"].isdigit()
        # a write while the database is down: a clean 503 in JSON
        st, h, body = patient.post(stack.web_ports[1], "/api/v1/holds", {"offering": stack.offering["id"],
                                                                        "start": slots[0],
                                                                        "client_key": "outage-pg"})
        assert st == 503 and json.loads(body)["code"] == "unavailable" and h["retry-after"].isdigit(), body[:300]
        t_up = time.monotonic()
        down_rows = load.since(t_down + 0.5, t_up)
        counts = assert_clean(down_rows, "PostgreSQL down")
        for name in ("signed-in page, ru (rendered)", "signed-in dashboard", "readyz"):
            assert counts[(name, 503)] > 0 and counts[(name, 200)] == 0, (name, dict(counts))
        # browsing slots needs no database while its cached answer lasts (bookings.engine.slots: a minute at most,
        # and never past a hold in it); holding one does (the 503 above), so nothing is booked on a stale answer
        assert counts[("slots API", 200)] + counts[("slots API", 503)] > 0, dict(counts)
        timings["pg_down_slots_from_cache"] = counts[("slots API", 200)]
        # anonymous visitors keep getting the cached pages from Redis
        assert counts[("anonymous page (cached)", 200)] > 0, dict(counts)
        timings["pg_down_answers"] = sum(counts.values())
        timings["pg_down_503"] = sum(v for (_n, s), v in counts.items() if s == 503)
        timings["pg_down_slowest_s"] = slowest(down_rows)
        stack.pg.start()
        timings["pg_recovery_s"] = wait_all_ok(load, 30)
        assert_clean(load.since(t_up), "PostgreSQL coming back")

        # ---------------------------------------------------------------- Redis down
        t_down = time.monotonic()
        stack.redis.stop()
        time.sleep(3.0)
        status, h, ready = readyz(stack)
        assert status == 503 and ready["database"] == "ok", ready
        assert ready["cache"].startswith("error") and ready["broker"].startswith("error"), ready
        st, h, body = patient.post(stack.web_ports[0], "/api/v1/holds", {"offering": stack.offering["id"],
                                                                        "start": slots[1],
                                                                        "client_key": "outage-redis"})
        assert st == 503 and json.loads(body)["code"] == "unavailable", body[:300]
        t_up = time.monotonic()
        down_rows = load.since(t_down + 0.5, t_up)
        counts = assert_clean(down_rows, "Redis down")
        timings["redis_down_slowest_s"] = slowest(down_rows)
        assert counts[("anonymous page (cached)", 503)] > 0, dict(counts)
        timings["redis_down_answers"] = sum(counts.values())
        timings["redis_down_503"] = sum(v for (_n, s), v in counts.items() if s == 503)
        timings["redis_down_200"] = sum(v for (_n, s), v in counts.items() if s == 200)
        stack.redis.start()
        timings["redis_recovery_s"] = wait_all_ok(load, 30)
        assert_clean(load.since(t_up), "Redis coming back")
        timings["requests"] = len(load.results)

    # the same gunicorn masters and workers throughout: recovered without a restart
    assert gunicorn_pids(stack) == before
    assert not [r for r in load.results if r[2] == 500]
    # nothing was held while the services were down
    assert stack.sql("SELECT count(*) FROM bookings_hold")[0][0] == 0

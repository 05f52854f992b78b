"""The fault tests' own production-shaped stack, started from nothing and thrown away afterwards.

* PostgreSQL: ``initdb`` + ``pg_ctl`` on a temporary data directory on a free port (as the ``postgres`` user when
  we are root: initdb refuses root);
* Redis: ``redis-server`` on a free port with a temporary directory and append-only persistence (the broker's
  Redis should have it, README "Running in production"); DB 0 is the cache, DB 1 the broker;
* an SMTP sink (here, in a thread) that records each message the workers deliver, and can slow a delivery down
  or act at the moment a delivery starts (to kill a worker mid-send);
* localstripe (``manage.py localstripe``) behind a TCP proxy we can cut (the payment provider going away);
* gunicorn instances (DEBUG off, PostgreSQL, the Redis cache and broker, persistent database connections as in
  production) and Celery workers (prefork, as the Procfile runs them), each in its own process group.

Never the machine's shared PostgreSQL or Redis. Anything missing (pg_ctl, redis-server) is a failure.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SECRET_KEY = "faults-only-not-a-secret-" + "f" * 40
STRIPE_SECRET, STRIPE_PUBLISHABLE, WEBHOOK_SECRET = "sk_test_faults", "pk_test_faults", "whsec_faults"


class StackError(RuntimeError):
    """Something the fault tests need is missing or did not start: the tests fail (never skip)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        time.sleep(interval)


def tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------- PostgreSQL


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise StackError("pg_ctl not found (/usr/lib/postgresql/*/bin/pg_ctl): install PostgreSQL's server "
                     "(apt-get install postgresql) — `make faults` does it")


class Postgres:
    def __init__(self, base: Path):
        self.bindir = pg_bindir()
        self.dir = base / "pg"
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.dir.mkdir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=timeout,
                                cwd=self.dir)
        if result.returncode:
            raise StackError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}\n"
                             f"{tail(self.log)}")

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--locale=C")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.log), "-w",
                  "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, name: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{name}"

    def connect(self, name: str = "postgres"):
        import psycopg

        return psycopg.connect(host=HOST, port=self.port, user="postgres", dbname=name, autocommit=True,
                               connect_timeout=5)


# ------------------------------------------------------------------------------------------- Redis


class Redis:
    def __init__(self, base: Path):
        self.server = shutil.which("redis-server")
        if not self.server:
            raise StackError("redis-server not found: install it (apt-get install redis-server) — `make faults` "
                             "does it")
        self.dir = base / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.server, "--port", str(self.port), "--bind", HOST, "--dir", str(self.dir), "--appendonly", "yes",
             "--save", "", "--logfile", str(self.log), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: self.ping(), 20, what="redis-server answering")
        except TimeoutError as exc:
            raise StackError(f"redis-server did not start:\n{tail(self.log)}") from exc

    def ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes its append-only file and exits
            self.proc.wait(20)
        self.proc = None

    def url(self, db: int) -> str:
        return f"redis://{HOST}:{self.port}/{db}"


# ------------------------------------------------------------------------------------------- SMTP sink


class SmtpSink:
    """A minimal SMTP server: a message counts as sent when its data was received and accepted (250).

    ``on_mail(n)`` is called when the n-th delivery starts (MAIL FROM), before the server answers: a test can
    kill the sender there, in the middle of sending. ``delay`` slows each delivery (seconds, after DATA).
    """

    def __init__(self):
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self.on_mail: Callable[[int], None] | None = None
        self.started = 0
        self.aborted = 0
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                try:
                    self.session()
                except (OSError, ValueError):
                    pass

            def session(self) -> None:
                self.reply("220 faults-sink ESMTP")
                in_mail = False
                while True:
                    line = self.rfile.readline()
                    if not line:
                        if in_mail:
                            with sink.lock:
                                sink.aborted += 1
                        return
                    cmd = line.decode("latin-1").strip().upper()
                    if cmd.startswith("EHLO"):
                        self.wfile.write(b"250-faults-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                        self.wfile.flush()
                    elif cmd.startswith("HELO"):
                        self.reply("250 faults-sink")
                    elif cmd.startswith("MAIL"):
                        with sink.lock:
                            sink.started += 1
                            n = sink.started
                        in_mail = True
                        hook = sink.on_mail
                        if hook:
                            hook(n)
                        self.reply("250 OK")
                    elif cmd.startswith("RCPT"):
                        self.reply("250 OK")
                    elif cmd == "DATA":
                        self.reply("354 go ahead")
                        chunks = []
                        while True:
                            data = self.rfile.readline()
                            if not data:
                                with sink.lock:
                                    sink.aborted += 1
                                return
                            if data in (b".\r\n", b".\n"):
                                break
                            chunks.append(data[1:] if data.startswith(b"..") else data)
                        if sink.delay:
                            time.sleep(sink.delay)
                        raw = b"".join(chunks)
                        self.reply("250 accepted")
                        sink.record(raw)
                        in_mail = False
                    elif cmd in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif cmd == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def record(self, raw: bytes) -> None:
        msg = message_from_bytes(raw)
        subject = str(make_header(decode_header(msg.get("Subject", ""))))
        parts = [p.get_content_type() for p in msg.walk()]
        with self.lock:
            self.messages.append({"subject": subject, "to": msg.get("To", ""), "parts": parts})

    def subjects(self, needle: str = "") -> list[str]:
        with self.lock:
            return [m["subject"] for m in self.messages if needle in m["subject"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------- TCP proxy


class TcpProxy:
    """127.0.0.1:<port> → 127.0.0.1:<target>. ``cut()`` refuses new connections and drops open ones (the
    provider is unreachable); ``restore()`` listens again on the same port."""

    def __init__(self, target: int):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, self.port))
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._conns.clear()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


# ------------------------------------------------------------------------------------------- processes


class Proc:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name, self.args, self.env, self.log_path = name, args, env, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it; closed with the process
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[int]:
        try:
            out = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in out.split()]

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the master/main process and its workers/children)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        self.kill_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group(signal.SIGKILL)
            self.proc.wait(10)

    def tail(self) -> str:
        return tail(self.log_path)


# ------------------------------------------------------------------------------------------- HTTP


def call(port: int, method: str, path: str, headers: dict | None = None, body: bytes | str | None = None,
         timeout: float = 30) -> tuple[int, dict, bytes]:
    """One request on its own connection: (status, lower-cased headers, body); status 0 = no answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": f"{HOST}:{port}", **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    except (OSError, http.client.HTTPException) as exc:
        return 0, {"error": exc.__class__.__name__}, b""
    finally:
        conn.close()


class Patient:
    """A signed-in patient (a session made in the database, as after signing in) speaking to the API."""

    def __init__(self, user_id: int, email: str, sessionid: str, csrf: str):
        self.user_id, self.email, self.sessionid, self.csrf = user_id, email, sessionid, csrf

    def headers(self, port: int, json_body: bool = True) -> dict:
        h = {"Cookie": f"sessionid={self.sessionid}; csrftoken={self.csrf}", "X-CSRFToken": self.csrf,
             "Origin": f"http://{HOST}:{port}", "Referer": f"http://{HOST}:{port}/"}
        if json_body:
            h["Content-Type"] = "application/json"
        return h

    def get(self, port: int, path: str):
        return call(port, "GET", path, self.headers(port, json_body=False))

    def post(self, port: int, path: str, payload: dict):
        return call(port, "POST", path, self.headers(port), json.dumps(payload))


# ------------------------------------------------------------------------------------------- the stack


class Stack:
    def __init__(self):
        self.t0 = time.monotonic()
        self.timings: dict[str, float] = {}
        self.base = Path(tempfile.mkdtemp(prefix="emhana-faults-"))
        os.chmod(self.base, 0o755)  # the postgres user must reach its directory inside
        self.logs = self.base / "logs"
        self.logs.mkdir()
        self.pg = Postgres(self.base)
        self.redis = Redis(self.base)
        self.smtp = SmtpSink()
        self.db_name = "emhana_faults"
        self.procs: list[Proc] = []
        self.webs: list[Proc] = []
        self.web_ports: list[int] = []
        self.workers: list[Proc] = []
        self.localstripe: Proc | None = None
        self.stripe_proxy: TcpProxy | None = None
        self.offering: dict = {}
        self._slots: list[str] = []
        self._seq = 0

    # --- setup
    def mark(self, name: str, since: float) -> None:
        self.timings[name] = round(time.monotonic() - since, 2)

    def env(self, **extra) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "CACHE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_ENV",
                            "EMAIL_URL", "STRIPE_API_BASE", "DJANGO_SETTINGS_MODULE", "CONN_MAX_AGE")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "portal.settings.dev", "DEBUG": "false", "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": f"{HOST},localhost", "DATABASE_URL": self.pg.url(self.db_name),
            "CACHE_URL": self.redis.url(0), "CELERY_BROKER_URL": self.redis.url(1),
            "EMAIL_URL": f"smtp://{HOST}:{self.smtp.port}", "STRIPE_SECRET_KEY": STRIPE_SECRET,
            "STRIPE_PUBLISHABLE_KEY": STRIPE_PUBLISHABLE, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": self.stripe_proxy.url if self.stripe_proxy else "", "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1", "PRIVATE_MEDIA_ROOT": str(self.base / "private_media"),
            "MEDIA_ROOT": str(self.base / "media"),
        })
        env.update(extra)
        return env

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode:
            raise StackError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def seed(self, *args: str) -> dict:
        result = subprocess.run([sys.executable, "-m", "tests.faults.seed", *args], cwd=ROOT, env=self.env(),
                                capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise StackError(f"seed {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def start(self, webs: int = 2, workers: int = 2) -> Stack:
        t = time.monotonic()
        self.pg.init()
        self.pg.start()
        with self.pg.connect() as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.redis.start()
        self.mark("postgres_redis_start", t)

        t = time.monotonic()
        ls_port = free_port()
        # its own webhooks go nowhere (port 9, discard): the tests deliver the events they mean to
        self.localstripe = self._proc("localstripe", [sys.executable, "manage.py", "localstripe", "--port",
                                                      str(ls_port), "--site-url", f"http://{HOST}:9"], self.env())
        self.migrate_and_load()
        try:
            wait_for(lambda: port_open(ls_port), 30, what="localstripe listening")
        except TimeoutError as exc:
            raise StackError(f"localstripe did not start:\n{self.localstripe.tail()}") from exc
        self.stripe_proxy = TcpProxy(ls_port)
        self.mark("migrate_and_load", t)

        t = time.monotonic()
        for _ in range(webs):
            self.start_web()
        for _ in range(workers):
            self.start_worker()
        self.wait_webs()
        self.wait_workers(self.workers)
        self.mark("app_start", t)
        self.offering = self.seed("offering")
        return self

    def migrate_and_load(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("load_catalogue", "-v0")
        self.manage("load_demo", "-v0")

    def _proc(self, name: str, args: list[str], env: dict) -> Proc:
        proc = Proc(name, args, env, self.logs / f"{name}.log").start()
        self.procs.append(proc)
        return proc

    def start_web(self) -> Proc:
        port = free_port()
        n = len(self.webs) + 1
        web = self._proc(f"web{n}", [str(VENV_BIN / "gunicorn"), "portal.wsgi:application", "--bind", f"{HOST}:{port}",
                                     "--workers", "2", "--access-logfile", "-", "--graceful-timeout", "5",
                                     "--timeout", "60"], self.env())
        web.port = port
        self.webs.append(web)
        self.web_ports.append(port)
        return web

    def wait_webs(self) -> None:
        for web in self.webs:
            try:
                wait_for(lambda w=web: call(w.port, "GET", "/healthz", timeout=2)[0] == 200, 60,
                         what=f"{web.name} answering")
            except TimeoutError as exc:
                raise StackError(f"{web.name} did not start:\n{web.tail()}") from exc

    def worker_args(self, name: str) -> list[str]:
        return [str(VENV_BIN / "celery"), "-A", "portal", "worker", "-l", "info", "--concurrency", "2", "-n",
                f"{name}@%h", "--without-gossip", "--without-mingle"]

    def start_worker(self, **env) -> Proc:
        self._seq += 1
        name = f"worker{self._seq}"
        worker = self._proc(name, self.worker_args(name), self.env(**env))
        self.workers.append(worker)
        return worker

    def wait_workers(self, workers: list[Proc], timeout: float = 60) -> None:
        for worker in workers:
            try:
                wait_for(lambda w=worker: (not w.alive() and StackError(f"{w.name} exited:\n{w.tail()}"))
                         or " ready." in tail(w.log_path, 100_000), timeout, what=f"{worker.name} ready")
            except TimeoutError as exc:
                raise StackError(f"{worker.name} did not come up:\n{worker.tail()}") from exc
            if not worker.alive():
                raise StackError(f"{worker.name} exited:\n{worker.tail()}")

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                proc.stop(10)
            except Exception:  # noqa: BLE001 - tear down everything we can
                proc.kill_group()
        if self.stripe_proxy:
            self.stripe_proxy.cut()
        self.smtp.stop()
        self.redis.stop()
        if self.pg.running():
            try:
                self.pg.stop("immediate")
            except StackError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    # --- helpers for the tests
    def sql(self, query: str, *params):
        with self.pg.connect(self.db_name) as conn:
            return conn.execute(query, params).fetchall()

    def patients(self, n: int, prefix: str) -> list[Patient]:
        data = self.seed("patients", str(n), prefix)
        return [Patient(p["id"], p["email"], p["sessionid"], p["csrf"]) for p in data["patients"]]

    def next_slot(self) -> str:
        """A free slot of the offering no other test used (the API's own list)."""
        if not self._slots:
            from datetime import date, datetime, timedelta

            start = date.today() + timedelta(days=3)
            status, _h, body = call(self.web_ports[0], "GET", f"/api/v1/offerings/{self.offering['id']}/slots"
                                    f"?start={start}&end={start + timedelta(days=45)}")
            assert status == 200, body[:500]
            free, end = [], ""
            for slot in json.loads(body)["slots"]:  # sessions are longer than the step: no two overlapping
                if not end or datetime.fromisoformat(slot["start"]) >= datetime.fromisoformat(end) + timedelta(hours=1):
                    free.append(slot["start"])
                    end = slot["end"]
            self._slots = free
            assert len(self._slots) > 12, "the demo offering has too few free slots for the fault tests"
            self._slots.reverse()
        return self._slots.pop()

    def payment_method(self, card: str) -> str:
        """A card PaymentMethod made in localstripe with the secret key (what Stripe.js would send us)."""
        from urllib.parse import urlencode

        body = urlencode({"type": "card", "card[number]": card, "card[exp_month]": "12", "card[exp_year]": "2034",
                          "card[cvc]": "123"})
        status, _h, data = call(self.stripe_proxy.port, "POST", "/v1/payment_methods",
                                {"Authorization": f"Bearer {STRIPE_SECRET}",
                                 "Content-Type": "application/x-www-form-urlencoded"}, body)
        assert status == 200, data[:500]
        return json.loads(data)["id"]

    def authenticate_3ds(self, intent_id: str, client_secret: str) -> None:
        """The patient completes 3-D Secure at the bank: the intent succeeds at the provider."""
        status, _h, data = call(self.stripe_proxy.port, "POST",
                                f"/v1/payment_intents/{intent_id}/_authenticate?success=true",
                                {"Content-Type": "application/json"},
                                json.dumps({"key": STRIPE_PUBLISHABLE, "client_secret": client_secret}))
        assert status == 200, data[:500]

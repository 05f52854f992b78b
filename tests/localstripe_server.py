"""Test helpers around localstripe: ``wait_for`` (poll until a predicate holds) and ``WebhookRecorder``
(a tiny HTTP server on 127.0.0.1 that records POSTs). The server itself is bookings.payments.localstripe_server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from bookings.payments.localstripe_server import LocalStripe, start_localstripe

__all__ = ["LocalStripe", "start_localstripe", "wait_for", "WebhookRecorder"]

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


class WebhookRecorder:
    """An HTTP server on 127.0.0.1:<free port> that records POSTs and answers 200.

    ``received`` is a list of ``(path, headers, body)``; ``events()`` parses the
    JSON bodies.
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with recorder._lock:
                    recorder.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def snapshot(self) -> list[tuple[str, dict[str, str], bytes]]:
        with self._lock:
            return list(self.received)

    def events(self) -> list[tuple[dict[str, Any], dict[str, str], bytes]]:
        """``(event_json, headers, raw_body)`` for every JSON body received so far."""
        out = []
        for _path, headers, body in self.snapshot():
            try:
                out.append((json.loads(body), headers, body))
            except ValueError:
                continue
        return out

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> WebhookRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

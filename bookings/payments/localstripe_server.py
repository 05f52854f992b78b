"""localstripe (a fake Stripe from PyPI) served on 127.0.0.1 from a background thread.

Used by the tests and by ``manage.py localstripe`` (which ``make run`` starts when no Stripe keys are set):
its aiohttp app on 127.0.0.1 and a free (or given) port, never every interface, with localstripe's disk
persistence (``/tmp/localstripe.pickle``) switched off::

    with LocalStripe() as ls:
        provider = StripeProvider(secret_key="sk_test_x", ..., api_base=ls.url)
        ls.register_webhook("app", "http://127.0.0.1:8000/payments/stripe/webhook/", "whsec_x")

localstripe keeps its objects and webhooks in module-level globals, so servers running at the same time in
one process share state. The store and webhooks are cleared when the first server starts and when the last
one stops.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.request
import warnings
from typing import Any

from aiohttp import web

_LOCK = threading.Lock()
_active = 0

# A direct opener: localhost traffic must never go through an HTTP(S)_PROXY.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _acquire_state() -> None:
    """First server in: switch off localstripe's pickling and start from empty."""
    global _active
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # lazy: a dev-only package, imported under the warnings filter (server: import once, quietly)
        from localstripe import resources, server, webhooks  # noqa: F401

    with _LOCK:
        if _active == 0:
            # Store.__setitem__/__delitem__ and the server's middleware call
            # store.dump_to_disk() after every change; instance attributes
            # shadow the methods without editing the package.
            resources.store.dump_to_disk = _noop
            resources.store.try_load_from_disk = _noop
            dict.clear(resources.store)
            webhooks._webhooks.clear()
        _active += 1


def _release_state() -> None:
    global _active
    # lazy: a dev-only package (imported quietly by _acquire_state)
    from localstripe import resources, webhooks

    with _LOCK:
        _active -= 1
        if _active == 0:
            dict.clear(resources.store)
            webhooks._webhooks.clear()
            for name in ("dump_to_disk", "try_load_from_disk"):
                resources.store.__dict__.pop(name, None)


def _build_app() -> web.Application:
    """A fresh Application with localstripe's routes and middlewares.

    localstripe's module-level ``app`` binds itself to the first event loop it
    runs on, so it cannot be restarted on a new loop; a copy can. The
    save-to-disk middleware is left out too.
    """
    # lazy: a dev-only package (imported quietly by _acquire_state)
    from localstripe import server

    middlewares = [m for m in server.app.middlewares if m is not server.save_store_middleware]
    app = web.Application(middlewares=middlewares)
    for callback in server.app.on_response_prepare:
        app.on_response_prepare.append(callback)
    with warnings.catch_warnings():
        # localstripe's handlers are plain functions; aiohttp deprecates that.
        warnings.simplefilter("ignore", DeprecationWarning)
        for route in server.app.router.routes():
            app.router.add_route(route.method, route.resource.canonical, route.handler)
    return app


class LocalStripe:
    """localstripe on 127.0.0.1:<free port> in a background thread."""

    host = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self.requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._holds_state = False

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalStripe is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def js_url(self) -> str:
        """localstripe's stand-in for https://js.stripe.com/v3/ (old Card Element only)."""
        return f"{self.url}/js.stripe.com/v3/"

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout: float = 5.0) -> LocalStripe:
        if self._thread is not None:
            raise RuntimeError("already started")
        _acquire_state()
        self._holds_state = True
        try:
            app = _build_app()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            self.port = sock.getsockname()[1]
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._run, args=(app, sock), name=f"localstripe-{self.port}", daemon=True
            )
            self._thread.start()
            if not self._started.wait(timeout):
                raise RuntimeError("localstripe did not start in time")
            if self._start_error is not None:
                raise RuntimeError("localstripe failed to start") from self._start_error
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self, app: web.Application, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.SockSite(self._runner, sock).start())
        except BaseException as exc:  # report to start()
            self._start_error = exc
            sock.close()
            self._started.set()
            return
        # Signal only once the loop is actually running, so stop() can reach it.
        loop.call_soon(self._started.set)
        loop.run_forever()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Webhooks localstripe scheduled but has not sent yet.
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        try:
            if loop is None:
                return
            if thread is not None and thread.is_alive() and loop.is_running():
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
                loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout)
            if not loop.is_running():
                loop.close()
        finally:
            self._loop = self._thread = self._runner = None
            self.port = None
            if self._holds_state:
                self._holds_state = False
                _release_state()

    def __enter__(self) -> LocalStripe:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- localstripe's /_config API ----------------------------------------

    def register_webhook(self, name: str, url: str, secret: str, events: list[str] | None = None) -> None:
        """Deliver events (each once, ~1 s later, no retries) to ``url`` signed with ``secret``."""
        data: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            data["events"] = list(events)
        self._request("POST", f"/_config/webhooks/{name}", data)

    def flush(self) -> None:
        """Delete every object localstripe holds (webhooks stay registered)."""
        self._request("DELETE", "/_config/data")

    def _request(self, method: str, path: str, data: dict[str, Any] | None = None) -> bytes:
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers={"Content-Type": "application/json"}
        )
        with _OPENER.open(request, timeout=5) as response:
            return response.read()


def start_localstripe() -> LocalStripe:
    """Start a LocalStripe; call ``.stop()`` when done."""
    return LocalStripe().start()

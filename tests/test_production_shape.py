"""What production relies on: a Content Security Policy with no inline script, a request id in every
response and in the log lines and tasks a request causes."""

import logging

import pytest

from portal import requestid

pytestmark = pytest.mark.django_db


def test_pages_carry_a_content_security_policy_without_inline_script(client):
    response = client.get("/en/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com" in policy and "'unsafe-inline'" not in policy.split(
        "script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy
    html = response.content.decode()
    scripts = [s for s in html.split("<script")[1:] if 'type="application/ld+json"' not in s.split(">")[0]]
    assert all("src=" in s.split(">")[0] for s in scripts), "no inline script on the page"


def test_a_request_id_is_kept_or_made_and_returned(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="proxy-req-12345")["X-Request-ID"] == "proxy-req-12345"
    made = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert made != "bad id with spaces" and len(made) == 32


def test_log_lines_and_enqueued_tasks_carry_the_request_id(caplog):
    token = requestid.REQUEST_ID.set("req-abcdef12")
    try:
        with caplog.at_level(logging.INFO, logger="emhana"):
            logger = logging.getLogger("emhana.test")
            logger.addFilter(requestid.RequestIdFilter())
            logger.info("hello")
        assert caplog.records[-1].request_id == "req-abcdef12"
        headers = {}
        requestid._carry_into_task(headers=headers)
        assert headers["request_id"] == "req-abcdef12"
    finally:
        requestid.REQUEST_ID.reset(token)


def test_a_hung_redis_costs_a_request_about_a_second_then_the_outage_page(settings):
    """Redis that accepts and never answers (a paused host) must not hold a worker until gunicorn kills it."""
    import socket
    import threading
    import time

    from django.test import Client

    from portal.settings.base import cache_config

    client = Client(raise_request_exception=False)  # the outage page is the answer; the error is logged
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)], daemon=True).start()
    # without timeouts the request would wait forever: hang up after 15 s so the test fails instead of hanging
    threading.Timer(15, lambda: [conn.close() for conn, _addr in held]).start()
    try:
        settings.CACHES = {"default": cache_config(f"redis://127.0.0.1:{server.getsockname()[1]}/0")}
        started = time.monotonic()
        response = client.get("/en/")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert response.status_code == 503 and response.has_header("Retry-After")
    assert elapsed < 10, elapsed  # one second per cache call that waits, not the worker's 30 s timeout

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

"""schemathesis over the whole published API (/api/v1/openapi.json), in process, as a signed-in patient.

Every operation gets generated requests — valid ones and deliberately wrong ones (negative mode) — and every
answer is checked by all of schemathesis' checks: no 5xx, the status is one the document declares, the body
matches the declared schema, the content type and headers are as declared, wrong input is refused (4xx) and
valid input is accepted. A run that finds nothing prints how many requests it sent and what they got.

Bounded here (``FUZZ_EXAMPLES`` per operation and mode, 20 by default) so that ``make test`` runs it in well
under a minute; ``make fuzz`` runs it long (FUZZ_EXAMPLES=300). The booking rate limit is lifted for this test
only: a fuzzer is one very busy patient, and 429 is checked by tests/bookings/test_api.py.
"""

from __future__ import annotations

import logging
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.config._checks import PositiveDataAcceptanceConfig

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
RANDOM = bool(os.environ.get("FUZZ_RANDOM"))  # make fuzz: new inputs each run; make test: the same ones

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]


class CountingApp:
    """The site's WSGI application, counting the statuses it answers."""

    def __init__(self, app):
        self.app, self.statuses = app, Counter()

    def __call__(self, environ, start_response):
        def counting_start_response(status, headers, exc_info=None):
            self.statuses[int(status.split()[0])] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, counting_start_response)


@pytest.fixture
def counting_app():
    """In process, inside the test's transaction: as Django's test client does, a request's end does not close
    the database connection (that would end the test's transaction)."""
    from django.core.signals import request_finished, request_started
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield CountingApp(get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def load_schema(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # The API answers 422 when a request does not match the document and 400 when it matches but its values
    # make no sense together (an end date before the start, a date years away, the lower price above the
    # upper one): schema-valid data may get a 400, never a 422.
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "3xx", "400", "401", "403", "404", "409", "429"])
    return schema


def test_every_operation_answers_as_documented(app_token, counting_app, settings):
    settings.BOOKING_RATE_LIMIT = "1000000/m"  # lifted for the fuzz run only
    schema = load_schema(counting_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13, [op.label for op in operations]
    failures, totals = [], Counter()
    # every refusal would log a warning; server errors still log (at ERROR)
    logging.getLogger("django.request").setLevel(logging.ERROR)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                                 phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
            def fuzz(case):
                case.call_and_validate(headers={"X-Session-Token": app_token})

            try:
                fuzz()
            except Exception as exc:  # every operation is tried; all findings are reported together
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
            finally:
                totals.update(counting_app.statuses)
                counting_app.statuses.clear()
    logging.getLogger("django.request").setLevel(logging.NOTSET)
    print(f"\nfuzz: {len(operations)} operations, {sum(totals.values())} requests, "
          f"by status: {dict(sorted(totals.items()))}, {len(failures)} findings")
    assert not [s for s in totals if s >= 500], totals
    assert not failures, "\n\n".join(failures)

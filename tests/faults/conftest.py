"""The fault tests run against a stack of their own (tests/faults/stack.py), started once for the session.

They are marked ``faults`` and run only when asked for by that marker (``make faults``, which CI runs):
``pytest -m "not e2e"`` and ``make test`` leave them out, since each run builds its own PostgreSQL and Redis.
"""

from __future__ import annotations

import time

import pytest

from .stack import Stack, StackError


def pytest_collection_modifyitems(config, items):
    """Deselect the fault tests unless the marker expression names them (``-m faults``)."""
    if "faults" in (config.getoption("markexpr") or ""):
        return
    mine = [item for item in items if item.get_closest_marker("faults")]
    if mine:
        config.hook.pytest_deselected(items=mine)
        items[:] = [item for item in items if not item.get_closest_marker("faults")]


@pytest.fixture(scope="session")
def stack():
    started = time.monotonic()
    s = Stack()
    try:
        try:
            s.start()
        except (StackError, TimeoutError) as exc:
            pytest.fail(f"the fault tests' stack did not start: {exc}", pytrace=False)
        print(f"\n[faults] stack up in {time.monotonic() - started:.1f} s {s.timings} (logs: {s.logs})")
        yield s
    finally:
        s.stop()


@pytest.fixture
def timings(request):
    """Measured numbers a test reports (printed with -s; kept in the report's sections)."""
    found: dict[str, object] = {}
    yield found
    if found:
        line = " ".join(f"{k}={v}" for k, v in found.items())
        print(f"\n[faults] {request.node.name}: {line}")
        request.node.user_properties.append(("timings", found))

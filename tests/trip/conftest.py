"""Fixtures for the trip tests: the booking fixtures (tests/bookings/conftest.py) and helpers to build a day on the
Gamma Knife with a single start."""

from tests.bookings.conftest import (  # noqa: F401 - shared fixtures
    awaiting,
    confirmed,
    fake_provider,
    offering,
    private_root,
    review_offering,
)

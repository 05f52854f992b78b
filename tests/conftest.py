"""Shared fixtures. The catalogue and demo clinics are loaded once per test session into the test
database (the same commands `make run` uses); every test then runs in its own rolled-back transaction."""

import pytest
from django.core.cache import cache
from django.core.management import call_command


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from django.db import connection

    name = str(connection.settings_dict["NAME"])
    # Never load into (or later flush) a database that is not the test database: a run of tests that
    # use no database skips creating one, and the connection would still point at the real one.
    assert "test" in name.rsplit("/", 1)[-1], f"not a test database: {name}"
    with django_db_blocker.unblock():
        call_command("load_catalogue", verbosity=0)
        call_command("load_demo", verbosity=0)


@pytest.fixture(autouse=True)
def _tasks_run_in_the_test(request):
    """Tasks run eagerly in the test process, even in CI's pass with a broker — except the worker tests,
    which enqueue for a real Celery worker."""
    from portal.celery import app

    if request.node.get_closest_marker("worker"):
        yield
        return
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _english_outside_requests():
    """A request activates its language for the thread; code a test calls directly starts in English."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture
def patient(django_user_model):
    from allauth.account.models import EmailAddress

    user = django_user_model.objects.create_user("pat", "patient@example.com", "a-long-password-1")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def app_token(client, patient):
    """An allauth headless app session token for the patient (the API's X-Session-Token)."""
    response = client.post("/_allauth/app/v1/auth/login",
                           {"email": "patient@example.com", "password": "a-long-password-1"},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    client.logout()
    return response.json()["meta"]["session_token"]


@pytest.fixture
def patient_client(client, patient):
    client.force_login(patient)
    return client


@pytest.fixture(scope="session")
def catalogue_snapshot(django_db_setup, django_db_blocker):
    """The session's loaded catalogue and demo data, serialized once.

    Transactional tests (races, the live server, the browser) empty every table afterwards; restoring
    this snapshot takes seconds, loading the catalogue again much longer.
    """
    from django.db import connection

    from catalog.models import ServicePage

    with django_db_blocker.unblock():
        if not ServicePage.objects.exists():  # an earlier transactional test flushed it
            call_command("load_catalogue", verbosity=0)
            call_command("load_demo", verbosity=0)
        return connection.creation.serialize_db_to_string()


@pytest.fixture(scope="module")
def keep_catalogue(catalogue_snapshot, django_db_blocker):
    """For modules of ``django_db(transaction=True, serialized_rollback=True)`` tests: each test starts with
    the catalogue, and it is back after the module's last test for whatever runs next."""
    from django.db import connection

    from catalog.models import ServicePage

    connection._test_serialized_contents = catalogue_snapshot
    with django_db_blocker.unblock():
        if not ServicePage.objects.exists():
            connection.creation.deserialize_db_from_string(catalogue_snapshot)
    yield
    with django_db_blocker.unblock():
        if not ServicePage.objects.exists():
            connection.creation.deserialize_db_from_string(catalogue_snapshot)

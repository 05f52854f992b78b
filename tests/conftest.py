"""Shared fixtures. The catalogue and demo clinics are loaded once per test session into the test
database (the same commands `make run` uses); every test then runs in its own rolled-back transaction."""

import pytest
from django.core.cache import cache
from django.core.management import call_command


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("load_catalogue", verbosity=0)
        call_command("load_demo", verbosity=0)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def patient(django_user_model):
    from allauth.account.models import EmailAddress

    user = django_user_model.objects.create_user("pat", "patient@example.com", "a-long-password-1")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@pytest.fixture
def patient_client(client, patient):
    client.force_login(patient)
    return client

"""Run inside the fault tests' stack (its DATABASE_URL): ``python -m tests.faults.seed <what> ...``; prints JSON.

* ``offering``: a directly bookable single-session offering with a calendar (the one the tests book);
* ``patients N PREFIX``: N patients with a verified email, each signed in (a session row, as after a login:
  hashing N passwords through the login form would only measure the password hasher).
"""

from __future__ import annotations

import json
import os
import sys


def offering() -> dict:
    from catalog.models import Offering

    qs = (Offering.objects.filter(is_active=True, review_required=False, sessions=1, resource_links__isnull=False,
                                  page__live=True, clinic__live=True)
          .select_related("page", "clinic").order_by("id").distinct())
    found = qs.filter(page__slug_en="pet-ct-fdg").first() or qs.first()
    if found is None:
        raise SystemExit("no directly bookable offering with a calendar: is the demo loaded?")
    return {"id": found.id, "deposit": found.deposit, "currency": found.currency,
            "resources": found.resource_links.count()}


def patients(n: int, prefix: str) -> dict:
    from allauth.account.models import EmailAddress
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from django.middleware.csrf import _get_new_csrf_string

    User = get_user_model()
    password = make_password(None)
    out = []
    with transaction.atomic():
        users = User.objects.bulk_create([User(username=f"{prefix}-{i:03d}", email=f"{prefix}-{i:03d}@faults.example",
                                               password=password) for i in range(n)])
        EmailAddress.objects.bulk_create([EmailAddress(user=u, email=u.email, verified=True, primary=True)
                                          for u in users])
        for user in users:
            store = SessionStore()
            store[SESSION_KEY] = str(user.pk)
            store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store.create()
            out.append({"id": user.pk, "email": user.email, "sessionid": store.session_key,
                        "csrf": _get_new_csrf_string()})
    return {"patients": out}


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.dev")
    import django

    django.setup()
    what = argv[0]
    if what == "offering":
        result = offering()
    elif what == "patients":
        result = patients(int(argv[1]), argv[2])
    else:
        raise SystemExit(f"unknown: {what}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

"""Bad input found by an outside attack run: each gets a clear 4xx answer and nothing saved is lost.

1. dates at the ends of the calendar (slots API, hold/booking payloads, desk day/week pages, desk forms);
2. offset/limit beyond PostgreSQL's bigint in the services API;
3. NUL bytes in query strings, form posts and JSON bodies;
4. malformed but correctly signed Stripe webhooks, and signatures dated in the future;
5. a valid OpenAPI document whose declared responses cover what each operation answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone, translation

from bookings.models import (
    AvailabilityException,
    Booking,
    ClinicMembership,
    Hold,
    Message,
    Quote,
    Resource,
    WebhookEvent,
)
from catalog.models import Offering, SpecialtyIndexPage
from tests.bookings.helpers import direct_offering

pytestmark = pytest.mark.django_db

CALENDAR_ENDS = ["0001-01-01", "9999-12-31"]
WEBHOOK_URL = "/payments/stripe/webhook/"
WEBHOOK_SECRET = "whsec_bad_input"


# --------------------------------------------------------------------------------- helpers




def problem(response, status):
    """The API's refusal: the status asked for and a ``{"code", "message"}`` body with a real message."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"]
    assert isinstance(body.get("message"), str) and len(body["message"]) > 5
    return body


@pytest.fixture
def desk_resource() -> Resource:
    member_clinics = ClinicMembership.objects.values("clinic_id")
    resource = (Resource.objects.filter(clinic_id__in=member_clinics).select_related("clinic__city")
                .order_by("id").first())
    assert resource is not None, "the demo data has a clinic with staff and resources"
    return resource


@pytest.fixture
def staff_client(desk_resource):
    from allauth.mfa.models import Authenticator

    user = ClinicMembership.objects.filter(clinic=desk_resource.clinic).select_related("user").first().user
    if not Authenticator.objects.filter(user=user).exists():
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})
    c = Client()
    c.force_login(user)
    return c


def desk_booking(resource, patient, state=Booking.UNDER_REVIEW) -> Booking:
    offering = (Offering.objects.filter(resource_links__resource=resource).select_related("clinic", "page")
                .first())
    return Booking.objects.create(user=patient, offering=offering, clinic=offering.clinic, state=state,
                                  price=offering.price, deposit=offering.deposit, service_title=offering.page.title)


# --------------------------------------------------------------------------------- 1. calendar ends


@pytest.mark.parametrize("start,end", [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31"),
                                       ("0001-01-01", "9999-12-31")])
def test_slots_api_refuses_dates_at_the_ends_of_the_calendar(client, start, end):
    offering = direct_offering()
    response = client.get(f"/api/v1/offerings/{offering.pk}/slots", {"start": start, "end": end})
    assert problem(response, 400)["code"] == "range"
    # a near range still answers
    today = timezone.now().date()
    near = client.get(f"/api/v1/offerings/{offering.pk}/slots",
                      {"start": str(today + timedelta(days=3)), "end": str(today + timedelta(days=5))})
    assert near.status_code == 200


@pytest.mark.parametrize("day", CALENDAR_ENDS)
def test_holds_and_bookings_refuse_times_at_the_ends_of_the_calendar(client, app_token, day):
    offering = direct_offering()
    headers = {"HTTP_X_SESSION_TOKEN": app_token}
    start = f"{day}T{'00:00' if day.startswith('0001') else '23:00'}:00+05:00"
    hold = client.post("/api/v1/holds", {"offering": offering.pk, "start": start, "client_key": "far"},
                       content_type="application/json", **headers)
    assert problem(hold, 400)["code"] == "start"
    booking = client.post("/api/v1/bookings", {"quote": 1, "start": start, "client_key": "far"},
                          content_type="application/json", **headers)
    assert problem(booking, 400)["code"] == "start"
    assert not Hold.objects.exists()


@pytest.mark.parametrize("day", CALENDAR_ENDS)
def test_desk_day_and_week_pages_fall_back_to_today_with_a_note(staff_client, desk_resource, day):
    tz = desk_resource.clinic.tz
    today = timezone.now().astimezone(tz).date()
    for url in (reverse("desk:day", args=[desk_resource.clinic_id]) + f"?date={day}",
                reverse("desk:week", args=[desk_resource.pk]) + f"?start={day}"):
        response = staff_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "more than two years from today" in page and "showing today" in page
    day_page = staff_client.get(reverse("desk:day", args=[desk_resource.clinic_id]) + f"?date={day}")
    assert day_page.context["day"] == today
    week_page = staff_client.get(reverse("desk:week", args=[desk_resource.pk]) + f"?start={day}")
    assert week_page.context["monday"] <= today <= week_page.context["sunday"]


def test_desk_note_about_a_far_date_is_translated(staff_client, desk_resource):
    url = reverse("desk:day", args=[desk_resource.clinic_id]) + "?date=9999-12-31"
    with translation.override("ru"):
        expected = translation.gettext("%(value)s is more than two years from today; showing today.") % {
            "value": "9999-12-31"}
    page = staff_client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert expected in page  # whatever the Russian catalogue says (English until it is translated)


@pytest.mark.parametrize("start,end", [("0001-01-01T00:00", "0001-01-02T00:00"),
                                       ("9999-12-31T00:00", "9999-12-31T23:00")])
def test_desk_exception_form_refuses_the_ends_of_the_calendar(staff_client, desk_resource, start, end):
    before = AvailabilityException.objects.count()
    response = staff_client.post(reverse("desk:exceptions", args=[desk_resource.pk]),
                                 {"kind": "closed", "start": start, "end": end, "reason": "Far away"})
    assert response.status_code == 200
    assert "Choose a date within two years of today." in response.content.decode()
    assert AvailabilityException.objects.count() == before


def test_desk_quote_form_refuses_the_ends_of_the_calendar(staff_client, desk_resource, patient):
    booking = desk_booking(desk_resource, patient)
    today = timezone.now().date()
    data = {"quote-price": "3500000", "quote-deposit": "700000", "quote-included": "Planning",
            "quote-treatment_plan": "Keep this plan",
            "quote-window_start": "0001-01-01", "quote-window_end": "9999-12-31",
            "quote-valid_until": "9999-12-31"}
    response = staff_client.post(reverse("desk:quote", args=[booking.pk]), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Choose a date within two years of today." in page and "Keep this plan" in page
    assert not Quote.objects.filter(booking=booking).exists()
    data.update({"quote-window_start": str(today + timedelta(days=20)),
                 "quote-window_end": str(today + timedelta(days=40)),
                 "quote-valid_until": str(today + timedelta(days=10))})
    assert staff_client.post(reverse("desk:quote", args=[booking.pk]), data).status_code == 302
    assert Quote.objects.filter(booking=booking).count() == 1


# --------------------------------------------------------------------------------- 2. offset and limit


@pytest.mark.parametrize("params", [{"offset": str(2**63)}, {"offset": "100001"}, {"offset": "-1"},
                                    {"limit": str(2**63)}, {"limit": "0"}, {"limit": "101"},
                                    {"offset": "9" * 40}])
def test_services_api_bounds_offset_and_limit(client, params):
    body = problem(client.get("/api/v1/services", params), 422)
    assert body["code"] == "invalid"
    assert next(iter(params)) in body["message"]  # it names the value to fix


def test_services_api_pages_within_the_bounds(client):
    first = client.get("/api/v1/services", {"limit": "100", "offset": "0"})
    assert first.status_code == 200 and first.json()["items"]
    beyond = client.get("/api/v1/services", {"offset": "100000"}).json()
    assert beyond["items"] == [] and beyond["count"] == first.json()["count"] and beyond["next"] is None


# --------------------------------------------------------------------------------- 3. NUL bytes


def test_nul_in_a_catalogue_page_query_is_a_400(client):
    with translation.override("en"):
        url = SpecialtyIndexPage.objects.get().get_url()
    response = client.get(url + "?q=%00")
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert client.get(url + "?q=scan%00x&city=almaty").status_code == 400
    assert client.get(url, {"q": "scan"}).status_code == 200


def test_nul_in_the_api_is_a_400_with_the_error_body(client, app_token):
    assert problem(client.get("/api/v1/services", {"q": "\x00"}), 400)["code"] == "nul"
    assert problem(client.get("/api/v1/services/x%00y"), 400)["code"] == "nul"
    offering = direct_offering()
    today = timezone.now().date()
    hold = client.post("/api/v1/holds", json.dumps({"offering": offering.pk,
                                                    "start": f"{today + timedelta(days=9)}T10:00:00+05:00",
                                                    "client_key": "a\u0000b"}),
                       content_type="application/json", HTTP_X_SESSION_TOKEN=app_token)
    assert problem(hold, 400)["code"] == "nul"
    assert not Hold.objects.exists()


def test_nul_in_a_form_post_is_a_400_and_nothing_is_saved(staff_client, desk_resource, patient):
    booking = desk_booking(desk_resource, patient)
    before = Message.objects.filter(booking=booking).count()
    response = staff_client.post(reverse("desk:message", args=[booking.pk]), {"message-body": "Hello\x00there"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert Message.objects.filter(booking=booking).count() == before
    login = Client().post(reverse("account_login"), {"login": "x\x00@example.com", "password": "p"})
    assert login.status_code == 400


# --------------------------------------------------------------------------------- 4. Stripe webhooks


def sign(payload: bytes, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(event_id=None, event_type="payment_intent.succeeded", obj=None) -> dict:
    return {"id": event_id or f"evt_bad_input_{uuid.uuid4().hex[:12]}", "object": "event", "type": event_type,
            "created": int(time.time()), "livemode": False,
            "data": {"object": obj if obj is not None else {"id": "pi_nobody_123", "object": "payment_intent"}}}


@pytest.fixture
def webhook(client):
    with override_settings(STRIPE_SECRET_KEY="sk_test_bad_input", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                           STRIPE_API_BASE="http://127.0.0.1:9"):
        def post(payload: bytes, signature: str | None = None):
            sig = sign(payload) if signature is None else signature
            return client.post(WEBHOOK_URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sig)
        yield post


def test_a_well_formed_signed_webhook_is_still_accepted(webhook):
    payload = json.dumps(event("evt_bad_input_ok")).encode()
    response = webhook(payload)
    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.filter(event_id="evt_bad_input_ok").exists()


@pytest.mark.parametrize("body", [
    event("evt_" + "x" * 200),
    event(event_type="payment_intent." + "y" * 200),
    event(event_id=12345),
    event(event_id=["evt_a"]),
    event(event_id="evt_has space"),
    event(event_type={"nested": "type"}),
    event(event_type=""),
    {"id": "evt_no_data", "type": "payment_intent.succeeded"},
    ["not", "an", "event"],
], ids=["long-id", "long-type", "numeric-id", "list-id", "odd-id", "dict-type", "empty-type", "no-data", "list"])
def test_a_signed_but_malformed_webhook_is_a_400_and_not_stored(webhook, body):
    before = WebhookEvent.objects.count()
    response = webhook(json.dumps(body).encode())
    assert response.status_code == 400, response.content
    assert WebhookEvent.objects.count() == before


def test_a_deeply_nested_or_huge_webhook_is_a_400(webhook):
    before = WebhookEvent.objects.count()
    deep = b'{"id": "evt_deep", "type": "payment_intent.succeeded", "data": {"object": ' + b"[" * 100_000 \
        + b"]" * 100_000 + b"}}"
    response = webhook(deep)
    assert response.status_code == 400 and b"deep" in response.content
    just_over = event("evt_nested_65", obj={"id": "pi_x"})
    inner = just_over["data"]["object"]
    for _ in range(70):
        inner["n"] = {}
        inner = inner["n"]
    assert webhook(json.dumps(just_over).encode()).status_code == 400
    huge = json.dumps(event("evt_huge", obj={"id": "pi_x", "pad": "z" * (300 * 1024)})).encode()
    assert webhook(huge).status_code == 400
    nul = json.dumps(event("evt_nul", obj={"id": "pi_\u0000"})).encode()
    assert webhook(nul).status_code == 400
    assert WebhookEvent.objects.count() == before


@pytest.mark.parametrize("offset", [3600, 330, -330, 10**9])
def test_a_webhook_signed_too_far_in_the_future_or_past_is_a_400(webhook, offset):
    payload = json.dumps(event("evt_timed")).encode()
    response = webhook(payload, sign(payload, timestamp=int(time.time()) + offset))
    assert response.status_code == 400
    assert not WebhookEvent.objects.filter(event_id="evt_timed").exists()
    assert webhook(payload, "t=99999999999999999999,v1=abc").status_code == 400
    assert webhook(payload, "v1=abc").status_code == 400


# --------------------------------------------------------------------------------- 5. OpenAPI


def openapi(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def resolve(doc, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        assert part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def all_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


def test_openapi_document_is_structurally_valid(client):
    doc = openapi(client)
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] and doc["paths"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes
    for name, scheme in schemes.items():
        if scheme["type"] == "apiKey":
            assert scheme.get("name") and scheme.get("in") in ("header", "query", "cookie"), name
    assert any(s.get("name") == "X-Session-Token" and s.get("in") == "header" for s in schemes.values())
    for ref in all_refs(doc):
        resolve(doc, ref)
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for requirement in op.get("security", []):
                assert set(requirement) <= set(schemes), (method, path)
            assert op["responses"], (method, path)
            for status, response in op["responses"].items():
                assert response.get("description") is not None, (method, path, status)
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    schema = resolve(doc, schema["$ref"]) if "$ref" in schema else schema
                    assert {"code", "message"} <= set(schema["properties"]), (method, path, status)


def _operations(offering, booking, hold_id):
    today = timezone.now().date()
    near = str(today + timedelta(days=9))
    return [
        ("get", "/api/v1/services", "/api/v1/services", {"data": {"lang": "xx"}}),
        ("get", "/api/v1/services", "/api/v1/services", {"data": {"limit": "x"}}),
        ("get", "/api/v1/services/{slug}", "/api/v1/services/no-such-thing", {}),
        ("get", "/api/v1/services/{slug}", "/api/v1/services/no-such-thing", {"data": {"lang": "xx"}}),
        ("get", "/api/v1/offerings", "/api/v1/offerings", {"data": {"lang": "xx"}}),
        ("get", "/api/v1/offerings/{offering_id}/slots", f"/api/v1/offerings/{offering.pk}/slots",
         {"data": {"start": "x", "end": near}}),
        ("get", "/api/v1/offerings/{offering_id}/slots", "/api/v1/offerings/999999999/slots",
         {"data": {"start": near, "end": near}}),
        ("post", "/api/v1/holds", "/api/v1/holds", {"json": "{not json", "auth": True}),
        ("post", "/api/v1/holds", "/api/v1/holds", {"json": {"offering": "x"}, "auth": True}),
        ("post", "/api/v1/holds", "/api/v1/holds", {"json": {}}),
        ("post", "/api/v1/holds", "/api/v1/holds", {"json": {}, "session": True}),
        ("get", "/api/v1/holds/{hold_id}", f"/api/v1/holds/{hold_id}", {"auth": True}),
        ("get", "/api/v1/holds/{hold_id}", "/api/v1/holds/not-a-uuid", {"auth": True}),
        ("get", "/api/v1/holds/{hold_id}", f"/api/v1/holds/{hold_id}", {}),
        ("delete", "/api/v1/holds/{hold_id}", f"/api/v1/holds/{hold_id}", {"auth": True}),
        ("delete", "/api/v1/holds/{hold_id}", f"/api/v1/holds/{hold_id}", {"session": True}),
        ("post", "/api/v1/bookings", "/api/v1/bookings", {"json": {}, "auth": True}),
        ("post", "/api/v1/bookings", "/api/v1/bookings", {"json": {"hold": str(uuid.uuid4())}, "auth": True}),
        ("post", "/api/v1/bookings", "/api/v1/bookings", {"json": "[", "auth": True}),
        ("get", "/api/v1/bookings/{booking_id}", "/api/v1/bookings/999999999", {"auth": True}),
        ("get", "/api/v1/bookings/{booking_id}", f"/api/v1/bookings/{2**70}", {"auth": True}),
        ("get", "/api/v1/bookings/{booking_id}", "/api/v1/bookings/abc", {"auth": True}),
        ("post", "/api/v1/bookings/{booking_id}/payments", f"/api/v1/bookings/{booking.pk}/payments",
         {"json": {"payment_method": ""}, "auth": True}),
        ("post", "/api/v1/bookings/{booking_id}/payments", "/api/v1/bookings/999999999/payments",
         {"json": {"payment_method": "pm_x"}, "auth": True}),
        ("post", "/api/v1/bookings/{booking_id}/payments", f"/api/v1/bookings/{booking.pk}/payments",
         {"json": {}, "auth": True}),
        ("post", "/api/v1/bookings/{booking_id}/reschedule", f"/api/v1/bookings/{booking.pk}/reschedule",
         {"json": {"start": "9999-12-31T10:00:00+05:00", "client_key": "k"}, "auth": True}),
        ("post", "/api/v1/bookings/{booking_id}/reschedule", f"/api/v1/bookings/{booking.pk}/reschedule",
         {"json": {"start": f"{near}T10:00:00+05:00", "client_key": "k"}, "auth": True}),
        ("get", "/api/v1/bookings/{booking_id}/cancel", f"/api/v1/bookings/{booking.pk}/cancel",
         {"data": {"reason": "whim"}, "auth": True}),
        ("get", "/api/v1/bookings/{booking_id}/cancel", "/api/v1/bookings/999999999/cancel", {"auth": True}),
        ("post", "/api/v1/bookings/{booking_id}/cancel", f"/api/v1/bookings/{booking.pk}/cancel",
         {"json": {"reason": "whim"}, "auth": True}),
        ("post", "/api/v1/bookings/{booking_id}/cancel", "/api/v1/bookings/999999999/cancel",
         {"json": {}, "auth": True}),
    ]


def test_every_status_the_api_answers_is_declared_with_the_error_body(client, app_token, patient):
    """Each operation, sent the wrong things, answers only statuses its OpenAPI entry declares, and every
    refusal has the ``{"code", "message"}`` body (django-ninja's own 401/404/422 and bad JSON included)."""
    doc = openapi(client)
    offering = direct_offering()
    booking = Booking.objects.create(user=patient, offering=offering, clinic=offering.clinic,
                                     state=Booking.REQUESTED, price=offering.price, deposit=offering.deposit,
                                     service_title=offering.page.title)
    hold_id = uuid.uuid4()
    session = Client()  # logged in with the session cookie, and checked for its CSRF token
    session.force_login(patient)
    session.handler.enforce_csrf_checks = True
    seen = set()
    for method, template, url, options in _operations(offering, booking, hold_id):
        declared = doc["paths"][template][method]["responses"]
        kwargs = {}
        if options.get("auth"):
            kwargs["HTTP_X_SESSION_TOKEN"] = app_token
        if "json" in options:
            raw = options["json"]
            kwargs.update(data=raw if isinstance(raw, str) else json.dumps(raw), content_type="application/json")
        elif "data" in options:
            kwargs["data"] = options["data"]
        caller = session if options.get("session") else client
        response = getattr(caller, method)(url, **kwargs)
        status = response.status_code
        assert str(status) in declared, (method, url, status, response.content[:300], sorted(declared))
        if status >= 400:
            problem(response, status)
        seen.add(status)
        # a NUL anywhere is refused the same way on every operation, and 400 is declared for each
        assert "400" in declared, (method, template)
    assert {400, 401, 403, 404, 422} <= seen
    assert Booking.objects.get(pk=booking.pk).state == Booking.REQUESTED  # refusals changed nothing


def test_validation_errors_and_bad_json_use_the_error_body(client, app_token):
    headers = {"HTTP_X_SESSION_TOKEN": app_token}
    bad_json = client.post("/api/v1/holds", "{", content_type="application/json", **headers)
    assert problem(bad_json, 400)["code"] == "body"
    wrong_type = client.post("/api/v1/holds", {"offering": "many", "start": "soon", "client_key": "k"},
                             content_type="application/json", **headers)
    body = problem(wrong_type, 422)
    assert "offering" in body["message"] and "start" in body["message"]
    deep = client.post("/api/v1/holds", "[" * 100_000 + "]" * 100_000, content_type="application/json", **headers)
    assert problem(deep, 400)["code"] == "body"
    assert problem(client.get("/api/v1/bookings/1"), 401)["code"] == "unauthorized"


def test_services_keep_their_answers_for_plain_requests(client):
    """The bounds do not change what ordinary calls get."""
    response = client.get("/api/v1/services", {"lang": "ru", "limit": "5"})
    assert response.status_code == 200 and 0 < len(response.json()["items"]) <= 5

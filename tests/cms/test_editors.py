"""Editors work in Wagtail's admin: edit a translation, publish, and see what is missing."""

import pytest
from allauth.mfa.models import Authenticator
from bs4 import BeautifulSoup
from django.contrib.auth.models import Group
from django.utils import translation

from catalog.models import ServicePage

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client, django_user_model):
    editor = django_user_model.objects.create_user("ed", "ed@example.com", "x-long-password-1")
    editor.groups.add(Group.objects.get(name="Editors"), Group.objects.get(name="Moderators"))
    Authenticator.objects.create(user=editor, type=Authenticator.Type.TOTP, data={"secret": "demo"})
    client.force_login(editor)
    return client


def form_fields(html: str) -> dict:
    """Every field of the edit form as the browser would submit it."""
    form = BeautifulSoup(html, "html.parser").find("form", id="page-edit-form")
    data = {}
    for el in form.find_all(["input", "textarea", "select"]):
        name = el.get("name")
        if not name or el.get("type") in ("submit", "button", "file") or el.has_attr("disabled"):
            continue
        if el.get("type") == "checkbox":
            if el.has_attr("checked"):
                data[name] = el.get("value", "on")
        elif el.name == "textarea":
            data[name] = el.text
        elif el.name == "select":
            chosen = el.find("option", selected=True)
            data[name] = chosen.get("value", "") if chosen else ""
        else:
            data[name] = el.get("value", "")
    return data


def test_editor_changes_a_kazakh_summary_and_publishes_it(editor_client, client):
    service = ServicePage.objects.live().first()
    edit_url = f"/admin/pages/{service.pk}/edit/"
    page = editor_client.get(edit_url)
    assert page.status_code == 200
    data = form_fields(page.content.decode())
    data["summary_kk"] = "Жаңа қысқаша сипаттама — редактордан"
    data["action-publish"] = "action-publish"
    response = editor_client.post(edit_url, data)
    assert response.status_code == 302, BeautifulSoup(response.content, "html.parser").find(class_="error-message")
    service.refresh_from_db()
    assert service.summary_kk == "Жаңа қысқаша сипаттама — редактордан"
    client.logout()
    with translation.override("kk"):
        url = service.get_url()
    assert "Жаңа қысқаша сипаттама — редактордан" in client.get(url).content.decode()


def test_editor_sees_which_translations_are_missing(editor_client):
    service = ServicePage.objects.live().first()
    ServicePage.objects.filter(pk=service.pk).update(description_tg="")
    response = editor_client.get("/admin/translation-status/?missing=1")
    assert response.status_code == 200
    assert service.title_en in response.content.decode()


def test_patients_cannot_open_the_admin(patient_client):
    response = patient_client.get("/admin/")
    assert response.status_code in (302, 403)
    assert "/admin/" not in response.get("Location", "/admin/x").replace("next=/admin/", "")


def test_an_offering_with_bookings_cannot_be_deleted_by_publishing(editor_client, patient):
    from bookings.models import Booking

    service = ServicePage.objects.live().filter(offerings__isnull=False).first()
    offering = service.offerings.order_by("sort_order", "pk").first()
    Booking.objects.create(user=patient, offering=offering, clinic=offering.clinic, price=offering.price,
                           deposit=offering.deposit, service_title=service.title)
    edit_url = f"/admin/pages/{service.pk}/edit/"
    data = form_fields(editor_client.get(edit_url).content.decode())
    prefix = next(k[: -len("-id")] for k, v in data.items()
                  if k.startswith("offerings-") and k.endswith("-id") and v == str(offering.pk))
    data[f"{prefix}-DELETE"] = "1"
    data["action-publish"] = "action-publish"
    response = editor_client.post(edit_url, data)
    assert response.status_code == 200  # the form comes back with the reason
    assert "cannot be deleted" in response.content.decode()
    assert type(offering).objects.filter(pk=offering.pk).exists()


def test_editors_enter_prices_in_tenge(editor_client):
    service = ServicePage.objects.live().filter(offerings__isnull=False).first()
    offering = service.offerings.order_by("sort_order", "pk").first()
    edit_url = f"/admin/pages/{service.pk}/edit/"
    data = form_fields(editor_client.get(edit_url).content.decode())
    prefix = next(k[: -len("-id")] for k, v in data.items()
                  if k.startswith("offerings-") and k.endswith("-id") and v == str(offering.pk))
    assert data[f"{prefix}-price"] == str(offering.price // 100)  # shown in tenge, not tiyn
    data[f"{prefix}-price"] = "1 250 000".replace(" ", "")
    data[f"{prefix}-deposit"] = "125000.50"
    data["action-publish"] = "action-publish"
    response = editor_client.post(edit_url, data)
    assert response.status_code == 302, BeautifulSoup(response.content, "html.parser").find(class_="error-message")
    offering.refresh_from_db()
    assert (offering.price, offering.deposit) == (125_000_000, 12_500_050)


def test_editors_preview_a_page_in_any_language(editor_client):
    service = ServicePage.objects.live().first()
    edit_url = f"/admin/pages/{service.pk}/edit/"
    preview_url = f"/admin/pages/{service.pk}/edit/preview/"
    data = form_fields(editor_client.get(edit_url).content.decode())
    assert editor_client.post(preview_url, data).json()["is_valid"]
    for lang in ("kk", "zh-hans", "uz"):
        html = editor_client.get(preview_url, {"mode": lang}).content.decode()
        assert getattr(service, f"title_{lang.replace('-', '_')}") in html, lang
        assert f'<html lang="{lang}"' in html

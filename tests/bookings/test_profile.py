"""The patient's profile: passport data for the visa letter, a checked phone number, up to two companions."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from bookings.models import Companion, PatientProfile

pytestmark = pytest.mark.django_db

CYRILLIC = re.compile("[А-Яа-яЁё]")


@pytest.fixture(autouse=True)
def _english():
    translation.activate("en")
    yield
    translation.activate("en")


def future(days=900):
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def past(days=30):
    return (timezone.localdate() - timedelta(days=days)).isoformat()


def profile_data(**overrides):
    data = {
        "given_names": "AIGERIM", "family_name": "SULTANOVA", "date_of_birth": "1985-04-12",
        "citizenship": "UZ", "passport_number": "fa 1234567", "passport_expiry": future(),
        "phone": "+998 90 123 45 67", "preferred_language": "ru", "home_timezone": "Asia/Tashkent",
        "companions-TOTAL_FORMS": "2", "companions-INITIAL_FORMS": "0",
        "companions-MIN_NUM_FORMS": "0", "companions-MAX_NUM_FORMS": "2",
    }
    data.update(overrides)
    return data


def companion(i, **overrides):
    data = {
        f"companions-{i}-given_names": f"COMPANION{i}", f"companions-{i}-family_name": "SULTANOV",
        f"companions-{i}-date_of_birth": f"1980-01-0{i + 1}", f"companions-{i}-citizenship": "UZ",
        f"companions-{i}-passport_number": f"FA765432{i}", f"companions-{i}-passport_expiry": future(),
        f"companions-{i}-relationship": "spouse",
    }
    data.update({f"companions-{i}-{k}": v for k, v in overrides.items()})
    return data


def test_profile_page_renders_with_labels_and_time_zones(patient_client):
    response = patient_client.get("/en/my/profile/")
    assert response.status_code == 200
    html = response.content.decode()
    for field in ("given_names", "family_name", "date_of_birth", "citizenship", "passport_number",
                  "passport_expiry", "phone", "preferred_language", "home_timezone"):
        assert f'for="id_{field}"' in html, field
    assert '<option value="Asia/Almaty">' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "no-store" in response["Cache-Control"]


def test_a_valid_profile_is_saved_and_the_phone_normalised(patient_client, patient):
    response = patient_client.post("/en/my/profile/", {**profile_data(), **companion(0)})
    assert response.status_code == 302
    profile = PatientProfile.objects.get(user=patient)
    assert profile.phone == "+998901234567"
    assert profile.passport_number == "FA1234567"
    assert profile.home_timezone == "Asia/Tashkent"
    assert str(profile.citizenship) == "UZ"
    assert profile.visa_ready
    assert list(profile.companions.values_list("given_names", flat=True)) == ["COMPANION0"]


def test_a_phone_without_plus_is_read_with_the_citizenship_as_a_hint(patient_client, patient):
    response = patient_client.post("/en/my/profile/", profile_data(citizenship="KZ", phone="8 701 234 56 78"))
    assert response.status_code == 302
    assert PatientProfile.objects.get(user=patient).phone == "+77012345678"


def test_invalid_phone_is_refused_in_the_patients_language(patient_client, patient):
    response = patient_client.post("/ru/my/profile/", profile_data(phone="12345"))
    assert response.status_code == 200
    error = response.context["form"].errors["phone"][0]
    assert CYRILLIC.search(error), error
    assert 'class="errorlist' in response.content.decode()
    assert not PatientProfile.objects.filter(user=patient).exists()


def test_an_expired_passport_is_refused(patient_client, patient):
    response = patient_client.post("/en/my/profile/", profile_data(passport_expiry=past()))
    assert response.status_code == 200
    assert "expired" in response.context["form"].errors["passport_expiry"][0]
    assert not PatientProfile.objects.filter(user=patient).exists()


def test_a_companion_with_an_expired_passport_is_refused(patient_client, patient):
    response = patient_client.post("/en/my/profile/", {**profile_data(), **companion(0, passport_expiry=past())})
    assert response.status_code == 200
    assert "expired" in response.context["formset"].forms[0].errors["passport_expiry"][0]
    assert not Companion.objects.filter(profile__user=patient).exists()


def test_a_third_companion_is_refused(patient_client, patient):
    data = {**profile_data(**{"companions-TOTAL_FORMS": "3"}), **companion(0), **companion(1), **companion(2)}
    response = patient_client.post("/en/my/profile/", data)
    assert response.status_code == 200
    assert "at most 2 companions" in " ".join(response.context["formset"].non_form_errors())
    assert not Companion.objects.filter(profile__user=patient).exists()


def test_companions_can_be_removed(patient_client, patient):
    patient_client.post("/en/my/profile/", {**profile_data(), **companion(0), **companion(1)})
    profile = PatientProfile.objects.get(user=patient)
    first, second = profile.companions.order_by("pk")
    data = profile_data(**{"companions-INITIAL_FORMS": "2"})
    data.update(companion(0, id=first.pk, DELETE="on"))
    data.update(companion(1, id=second.pk))
    response = patient_client.post("/en/my/profile/", data)
    assert response.status_code == 302
    assert list(profile.companions.all()) == [second]


def test_blank_companion_forms_are_ignored(patient_client, patient):
    response = patient_client.post("/en/my/profile/", profile_data())
    assert response.status_code == 302
    assert not Companion.objects.filter(profile__user=patient).exists()


def test_countries_and_time_zones_are_named_and_sorted_in_the_pages_language(patient_client):
    import re

    from django.utils import translation

    from portal.l10n import sort_key

    for lang, kazakhstan, tajikistan in (("kk", "Қазақстан", "Тәжікстан"), ("zh-hans", "哈萨克斯坦", "塔吉克斯坦"),
                                         ("ru", "Казахстан", "Таджикистан")):
        with translation.override(lang):
            html = patient_client.get(f"/{lang}/my/profile/").content.decode()
        select = html[html.index('name="citizenship"'):]
        select = select[:select.index("</select>")]
        names = re.findall(r'<option value="[A-Z]{2}"[^>]*>([^<]+)</option>', select)
        assert kazakhstan in names and tajikistan in names, lang
        assert names == sorted(names, key=sort_key(lang)), f"{lang}: countries in that language's order"
        zones = html[html.index('name="home_timezone"'):]
        zones = zones[:zones.index("</select>")]
        assert "<optgroup" in zones and "UTC+05:00" in zones
        assert ">Asia/" not in zones and "Asia/Almaty</option>" not in zones
    assert names.index("Казахстан") < names.index("Таджикистан")

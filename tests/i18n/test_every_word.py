"""Every word a patient reads is in the page's language: each patient-facing page and email, in each of the
seven languages, is checked by script and by the letters only some languages use.

- English pages have no Cyrillic or Chinese; Uzbek (Latin script) pages no Cyrillic and no English sentences;
  Chinese pages no Cyrillic and no English sentences; Russian, Kazakh, Kyrgyz and Tajik pages no English
  sentences.
- A Kazakh, Kyrgyz or Tajik paragraph of some length has that language's own letters (a Russian paragraph
  on a Kazakh page is caught); a Russian paragraph has none of theirs.
Brand and device names, abbreviations and addresses in Latin letters are allowed: an "English sentence" is
three or more lowercase Latin words in a row (or, for Uzbek, common English words).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from bookings.models import Booking
from catalog.models import ClinicPage, ServicePage, SpecialtyIndexPage
from cms.models import HomePage, InformationPage
from tests.bookings.helpers import QUESTIONNAIRE, book, free_options

pytestmark = pytest.mark.django_db

LANGS = ["en", "ru", "kk", "ky", "uz", "tg", "zh-hans"]
OWN_LETTERS = {"kk": "әғқңөұүһі", "ky": "ңөү", "tg": "ӣӯҳҷқғ"}
NOT_RUSSIAN = "әғқңөұүһіӣӯҳҷ"
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_RUN = re.compile(r"\b[a-z]{2,}(?:[ ,]+[a-z]{2,}){2,}\b")
ENGLISH_WORDS = {"the", "and", "your", "you", "with", "for", "this", "are", "is", "of", "to", "will", "can"}
LONG_ENOUGH = 40  # Cyrillic letters in a paragraph before it is judged
# Small words of Russian that Kazakh, Kyrgyz and Tajik do not use: two of them and none of the language's own
# letters make a paragraph Russian.
RUSSIAN_WORDS = {"и", "в", "на", "с", "для", "по", "при", "или", "от", "что", "это", "не", "из", "как", "после",
                 "если", "вы", "вас", "ваш", "ваши", "вам", "до", "за", "мы", "нас", "также", "только", "уже"}


def visible_blocks(html: str, lang: str) -> list[str]:
    """The text of each block a reader sees, without scripts, hidden text, and parts marked as another
    language (the language switcher names each language in itself)."""
    soup = BeautifulSoup(html, "html.parser")
    for el in soup(["script", "style", "noscript", "template", "head"]):
        el.decompose()
    # what people typed (questionnaire answers, messages) is theirs, in whatever language they wrote it
    for el in soup.select("[lang], [translate=no], .user-text, input, textarea"):
        if el.name == "html":
            continue
        if el.get("lang") and el["lang"].lower() == lang:
            continue
        el.decompose()
    blocks = []
    for el in soup.find_all(["p", "li", "h1", "h2", "h3", "h4", "dt", "dd", "td", "th", "label", "summary",
                             "button", "a", "option", "legend", "span", "strong", "figcaption", "title"]):
        if el.find(["p", "li", "h1", "h2", "h3", "td", "dd", "ul", "ol", "table"]):
            continue  # a container: its children are checked
        text = re.sub(r"\s+", " ", el.get_text(" ", strip=True))
        if text:
            blocks.append(text)
    return blocks


def without_allowed(text: str) -> str:
    """Drop what any language may contain in Latin letters: addresses, links, codes, brand names."""
    text = re.sub(r"\S+@\S+|https?://\S+|\b[A-Z0-9]{2,}-[A-Z0-9]{3,}\b", " ", text)
    text = re.sub(r"\b(?:[A-Z][A-Za-z0-9]*[\s\-]*)+\b", " ", text)  # Capitalised names, acronyms
    return text


def problems_in(blocks: list[str], lang: str) -> list[str]:
    found = []
    for text in blocks:
        plain = without_allowed(text)
        letters = sum(c.isalpha() for c in text)
        if lang in ("en", "uz", "zh-hans") and CYRILLIC.search(text):
            found.append(f"Cyrillic: {text[:120]}")
        if lang != "zh-hans" and HAN.search(text):
            found.append(f"Chinese: {text[:120]}")
        if lang in ("ru", "kk", "ky", "tg", "zh-hans") and ENGLISH_RUN.search(plain):
            found.append(f"English: {text[:120]}")
        if lang == "uz" and len(ENGLISH_WORDS & set(re.findall(r"[a-z]+", plain))) >= 2:
            found.append(f"English: {text[:120]}")
        cyrillic_letters = len(CYRILLIC.findall(text))
        words = set(re.findall(r"[\u0400-\u04ff]+", text.lower()))
        if (lang in OWN_LETTERS and cyrillic_letters >= LONG_ENOUGH and len(words & RUSSIAN_WORDS) >= 2
                and not any(c in OWN_LETTERS[lang] for c in text.lower())):
            found.append(f"not {lang} (Russian?): {text[:120]}")
        if lang == "ru" and any(c in NOT_RUSSIAN for c in text.lower()) and letters >= 20:
            found.append(f"not Russian: {text[:120]}")
    return found


def check(html: str, lang: str, where: str):
    problems = problems_in(visible_blocks(html, lang), lang)
    assert not problems, f"{where} in {lang}:\n" + "\n".join(problems[:15])


def url_of(page, lang):
    with translation.override(lang):
        return page.specific.get_url()


def public_urls(lang):
    home = HomePage.objects.get()
    urls = [url_of(home, lang), url_of(SpecialtyIndexPage.objects.get(), lang)]
    urls += [url_of(p, lang) for p in InformationPage.objects.live()]
    clinics = list(ClinicPage.objects.live().order_by("pk"))
    urls += [url_of(p, lang) for p in [clinics[0].get_parent()] + clinics[::7]]
    services_ = list(ServicePage.objects.live().order_by("pk"))
    urls += [url_of(p, lang) for p in services_[::9]]  # nine services from every part of the catalogue
    urls += [f"/{lang}/accounts/login/", f"/{lang}/accounts/signup/", f"/{lang}/accounts/password/reset/"]
    return urls


@pytest.mark.parametrize("lang", LANGS)
def test_public_pages_are_in_the_pages_language(client, lang):
    for url in public_urls(lang):
        response = client.get(url)
        assert response.status_code == 200, url
        check(response.content.decode(), lang, url)
    response = client.get(url_of(SpecialtyIndexPage.objects.get(), lang), {"q": "zzzz-nothing", "price_min": "x"})
    check(response.content.decode(), lang, "an empty search with a bad filter")


@pytest.mark.parametrize("lang", LANGS)
def test_booking_pages_and_emails_are_in_the_patients_language(patient_client, patient, lang,
                                                               django_capture_on_commit_callbacks, monkeypatch):
    from bookings.payments import services as payments_service
    from bookings.review import services as review
    from tests.bookings.helpers import FakeProvider, pay

    monkeypatch.setattr(payments_service, "get_provider", lambda: FakeProvider())
    # treatments, in a fixed order: the same pages also offer consultations, and PostgreSQL has no natural order
    offering = ServicePage.objects.get(import_key="pet_ct_fdg").offerings.filter(
        resource_links__isnull=False, kind="treatment").order_by("id").first()
    reviewed = ServicePage.objects.get(import_key="gamma_knife_radiosurgery").offerings.filter(
        resource_links__isnull=False, kind="treatment", review_required=True).order_by("id").first()
    def url(name, *args):
        with translation.override(lang):  # a request activates its own language; name each URL in ours
            return reverse(name, args=args)

    pages = [url("book_offering", offering.pk), url("patient_profile"), url("patient_records"),
             url("request_treatment", reviewed.pk)]
    option = free_options(offering)[0]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert book(patient_client, offering, option, lang=lang).status_code == 302
        booking = Booking.objects.get(user=patient)
        pages += [url("booking_checkout", booking.reference), url("booking_cancel", booking.reference)]
        for page_url in pages:
            response = patient_client.get(page_url)
            assert response.status_code == 200, page_url
            check(response.content.decode(), lang, page_url)
        assert pay(patient_client, booking).status_code == 200
    for page_url in (url("booking_detail", booking.reference), url("patient_dashboard")):
        check(patient_client.get(page_url).content.decode(), lang, page_url)
    requested = review.request_treatment(patient, reviewed, questionnaire=QUESTIONNAIRE)
    Booking.objects.filter(pk=requested.pk).update(language=lang)
    start = timezone.localdate() + timedelta(days=20)
    with django_capture_on_commit_callbacks(execute=True):
        review.send_quote(requested, None, price=reviewed.price, deposit=reviewed.deposit, included="",
                            treatment_plan="", window_start=start, window_end=start + timedelta(days=14),
                            valid_until=timezone.now() + timedelta(days=7))
    check(patient_client.get(url("booking_detail", requested.reference)).content.decode(), lang, "a quoted request")
    assert mail.outbox, "the confirmation and quote emails were sent"
    clinic = offering.clinic
    place = ("，" if lang == "zh-hans" else ", ").join(p for p in (clinic.title, clinic.address, clinic.city.name) if p)
    assert any(place in message.body for message in mail.outbox), f"the clinic's address as {lang} writes it"
    if lang == "zh-hans":  # the clinic's time named after its city, as Chinese punctuates it
        assert any("，UTC+05:00" in message.body for message in mail.outbox)
    for message in mail.outbox:
        check(f"<p>{message.subject}</p>" + "".join(f"<p>{line}</p>" for line in message.body.split("\n")),
              lang, f"email {message.subject!r}")


def test_the_checker_catches_wrong_languages():
    """The check itself: a Russian paragraph on a Kazakh page, English on a Chinese one, Cyrillic in Uzbek."""
    russian = "Операция на открытом сердце, при которой собственные сосуды пациента используют для обхода"
    assert problems_in([russian], "kk") and problems_in([russian], "tg") and not problems_in([russian], "ru")
    assert problems_in(["Ашық жүрекке жасалатын операция, пациенттің өз тамырлары пайдаланылады"], "ru")
    assert problems_in(["Your chosen time is kept"], "zh-hans") and problems_in(["your chosen time"], "kk")
    assert problems_in(["Операция"], "uz") and problems_in(["Pay the deposit for your booking"], "uz")
    assert not problems_in(["TomoTherapy HD (Accuray), PET-CT, 4242 4242"], "kk")
    assert not problems_in(["Gamma Knife радиохирургиясы"], "kk")

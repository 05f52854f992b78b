"""Second opinion without a call (records and questions → structured opinion → PDF → treatment request), DICOM
metadata from pydicom, and the viewer's access-checked, access-logged reads (single files and ZIP members)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from bookings.consult import dicom
from bookings.models import Booking, DicomSummary, MedicalRecord, RecordAccess, SecondOpinion
from catalog.models import Offering
from portal.l10n import money
from tests.bookings.helpers import PDF, upload

from .conftest import dicom_file, study_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def opinion_request(patient_client, patient, opinion_offering, private_root):
    response = patient_client.post(reverse("second_opinion_request", args=[opinion_offering.pk]), {
        "diagnosis": "Acoustic neuroma, 1.8 cm", "consent": "on", "questions": "Is radiosurgery an option instead of an operation?",
        "records": [upload("mri.zip", study_zip()), upload("report.pdf", PDF), upload("ct.dcm", dicom_file("CT_small.dcm"))],
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    booking = Booking.objects.get(user=patient, offering=opinion_offering)
    assert booking.state == Booking.REQUESTED and booking.records.count() == 3
    return booking


def _opinion(staff_client, booking, send=True, **extra):
    target = (Offering.objects.filter(clinic=booking.clinic, page=booking.offering.page, kind=Offering.TREATMENT)
              .first())
    data = {"findings": "Vestibular schwannoma 18 mm, Koos II.", "recommended_treatment": "Gamma Knife radiosurgery.",
            "treatable_here": "yes", "indicative_price": "2 500 000" if False else "2500000",
            "suggested_offering": target.pk, **extra}
    if send:
        data["send"] = "1"
    return staff_client.post(reverse("desk:opinion", args=[booking.pk]), data), target


def test_request_page_needs_records_and_questions(patient_client, opinion_offering):
    response = patient_client.post(reverse("second_opinion_request", args=[opinion_offering.pk]),
                                   {"diagnosis": "x", "questions": "", "consent": "on"})
    assert response.status_code == 400
    assert not Booking.objects.filter(offering=opinion_offering).exists()


def test_opinion_reaches_the_patient_as_page_and_pdf_and_becomes_a_request(
        patient_client, other_client, staff_client, foreign_staff_client, opinion_request, private_root):
    booking = opinion_request
    # the desk shows the questions, and only this clinic's staff may write
    assert foreign_staff_client.get(reverse("desk:opinion", args=[booking.pk])).status_code == 404
    page = staff_client.get(reverse("desk:opinion", args=[booking.pk]))
    assert "Is radiosurgery an option" in page.content.decode()
    # a draft is not shown to the patient
    response, target = _opinion(staff_client, booking, send=False)
    assert response.status_code == 302, response.content.decode()[-6000:]
    assert "Vestibular schwannoma 18 mm" not in patient_client.get(
        reverse("booking_detail", args=[booking.reference])).content.decode()
    assert patient_client.get(reverse("opinion_pdf", args=[booking.reference])).status_code == 404
    response, target = _opinion(staff_client, booking, send=True)
    assert response.status_code == 302
    opinion = SecondOpinion.objects.get(booking=booking)
    assert opinion.sent and opinion.indicative_price == 250_000_000  # 2 500 000 tenge in tiyn
    booking.refresh_from_db()
    assert booking.state == Booking.COMPLETED
    # sent: no more edits
    assert _opinion(staff_client, booking, findings="changed")[0].status_code == 302
    assert SecondOpinion.objects.get(booking=booking).findings.startswith("Vestibular")

    html = patient_client.get(reverse("booking_detail", args=[booking.reference])).content.decode()
    assert "The specialist's opinion" in html and "Gamma Knife radiosurgery." in html
    assert money(250_000_000, "KZT") in html
    pdf = patient_client.get(reverse("opinion_pdf", args=[booking.reference]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert other_client.get(reverse("opinion_pdf", args=[booking.reference])).status_code == 404

    # one click: a treatment request with the records carried over (each copy read through the logged read)
    assert other_client.post(reverse("opinion_to_request", args=[booking.reference])).status_code == 404
    # without the consent box: nothing is requested
    patient_client.post(reverse("opinion_to_request", args=[booking.reference]))
    assert not Booking.objects.filter(from_opinion__booking=booking).exists()
    response = patient_client.post(reverse("opinion_to_request", args=[booking.reference]), {"consent": "on"})
    assert response.status_code == 302
    request = Booking.objects.get(from_opinion__booking=booking)
    assert response["Location"].endswith(reverse("booking_detail", args=[request.reference]))
    assert request.offering == target and request.state == Booking.REQUESTED
    originals = {r.sha256 for r in booking.records.all()}
    assert {r.sha256 for r in request.records.all()} == originals and len(originals) == 3
    assert RecordAccess.objects.filter(record__booking=booking, action="copy").count() == 3
    assert "Vestibular schwannoma 18 mm" in request.questionnaire["opinion_findings"]
    # a second click does not make a second request
    patient_client.post(reverse("opinion_to_request", args=[booking.reference]), {"consent": "on"})
    assert Booking.objects.filter(user=booking.user, offering=target).count() == 1


def test_opinion_pdf_draws_cyrillic_and_chinese(opinion_request, staff, caplog):
    from bookings.consult.pdf import build_opinion_pdf, cjk_font

    assert cjk_font()[0], "fonts-noto-cjk must be installed (make e2e installs it): Chinese needs a CJK font"
    opinion = SecondOpinion.objects.create(
        booking=opinion_request, findings="Шваннома слухового нерва. 听神经瘤，直径18毫米。",
        recommended_treatment="Радиохирургия «Гамма-нож». 伽玛刀放射外科。", treatable_here="yes",
        indicative_price=250_000_000, author=staff)
    with caplog.at_level("WARNING"):
        pdf = build_opinion_pdf(opinion)
    assert pdf.startswith(b"%PDF")
    assert b"DejaVu" in pdf and b"NotoSansCJK" in pdf  # both fonts embedded (subsets of the glyphs used)
    assert "missing" not in caplog.text.lower() and b"Install fonts" not in pdf


def test_dicom_metadata_from_files_and_zips(patient, private_root):
    from bookings.patients.records import store_record

    single = store_record(patient, upload("ct.dcm", dicom_file("CT_small.dcm")))
    study = store_record(patient, upload("study.zip", study_zip(count=3)))
    s1 = dicom.summary(patient, single)
    assert (s1.modalities, s1.study_date.isoformat(), s1.series_count, s1.image_count) == ("CT", "2004-01-19", 1, 1)
    s2 = dicom.summary(patient, study)
    assert s2.series_count == 2 and s2.image_count == 4
    assert set(s2.modalities.split(", ")) == {"CT", "MR"} and s2.body_parts == "HEAD"
    assert s2.study_date.isoformat() == "2004-01-19"
    # the viewer's order: the CT series (3 images) first, by instance number, though stored 3, 2, 1
    ct = next(s for s in s2.series if s["modality"] == "CT")
    assert ct["members"] == [3, 2, 1] and dicom.viewer_members(s2) == [3, 2, 1]
    mr = next(s for s in s2.series if s["modality"] == "MR")
    assert dicom.viewer_members(s2, 1) == mr["members"] == [4]
    # read once, logged once; the second look uses the stored summary
    assert RecordAccess.objects.filter(record=study, action="metadata").count() == 1
    dicom.summary(patient, study)
    assert RecordAccess.objects.filter(record=study, action="metadata").count() == 1
    assert DicomSummary.objects.count() == 2


def test_member_streaming_view_checks_access(opinion_request, staff_client, foreign_staff_client, other_client,
                                             patient_client, staff):
    study = opinion_request.records.get(content_type="application/zip")
    single = opinion_request.records.get(content_type="application/dicom")
    viewer = staff_client.get(reverse("desk:dicom_viewer", args=[study.pk]))
    assert viewer.status_code == 200
    html = viewer.content.decode()
    first = reverse("desk:dicom_member", args=[study.pk, 3])
    assert first in html and "vendor/dwv/dwv.bundle.js" in html and "<script>" not in html
    # dwv is GPL-3.0: the page says so and links to its licence and source, for the version package.json pins
    assert "vendor/dwv/SOURCE.txt" in html and "GNU GPL v3" in html
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pinned = json.loads((root / "package.json").read_text())["devDependencies"]["dwv"]
    source = (root / "static/vendor/dwv/SOURCE.txt").read_text()
    assert f"dwv {pinned}" in source and f"tree/v{pinned}" in source
    assert f"===== dwv {pinned} =====" in (root / "static/vendor/dwv/LICENSES.txt").read_text()
    response = staff_client.get(first)
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    body = b"".join(response.streaming_content)
    assert body[128:132] == b"DICM" and "no-store" in response["Cache-Control"]
    assert RecordAccess.objects.filter(record=study, user=staff, action="view").exists()
    # a directory entry, an index past the end, a negative one: 404
    for index in (0, 99):
        assert staff_client.get(reverse("desk:dicom_member", args=[study.pk, index])).status_code == 404
    # the single file is served for the viewer too
    response = staff_client.get(reverse("desk:dicom_file", args=[single.pk]))
    assert b"".join(response.streaming_content)[128:132] == b"DICM"
    # not a DICOM upload: no viewer
    pdf = opinion_request.records.get(content_type="application/pdf")
    assert staff_client.get(reverse("desk:dicom_viewer", args=[pdf.pk])).status_code == 404
    # another clinic's staff, other patients and the patient (the viewer is the desk's) get nothing, and no log
    before = RecordAccess.objects.count()
    for c in (foreign_staff_client, other_client, patient_client):
        for url in (first, reverse("desk:dicom_viewer", args=[study.pk]), reverse("desk:dicom_file", args=[single.pk])):
            assert c.get(url).status_code in (403, 404)
    assert RecordAccess.objects.count() == before


def test_desk_lists_study_summaries_with_viewer_links(opinion_request, staff_client, patient_client):
    study = opinion_request.records.get(content_type="application/zip")
    html = staff_client.get(reverse("desk:booking", args=[opinion_request.pk])).content.decode()
    assert reverse("desk:dicom_viewer", args=[study.pk]) in html and "HEAD" in html
    html = patient_client.get(reverse("booking_detail", args=[opinion_request.reference])).content.decode()
    assert "Scans (DICOM)" in html and "HEAD" in html and "dicom_viewer" not in html
    assert MedicalRecord.objects.filter(booking=opinion_request).count() == 3

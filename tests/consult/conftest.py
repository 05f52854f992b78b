"""Fixtures for the consultation tests: a demo consultation and second-opinion offering, their clinic's staff
(with two-factor authentication, as the record reads require), another clinic's staff, DICOM test studies."""

from __future__ import annotations

import io
import zipfile

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client

from bookings.models import ClinicMembership
from catalog.models import Offering
from tests.bookings.conftest import fake_provider, other_client, other_patient, private_root  # noqa: F401


def with_mfa(user):
    if not Authenticator.objects.filter(user=user).exists():
        Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "x"})
    return user


@pytest.fixture
def consultation_offering():
    offering = (Offering.objects.filter(kind=Offering.CONSULTATION, is_active=True, resource_links__isnull=False)
                .select_related("clinic__city", "page").order_by("id").first())
    assert offering is not None, "the demo data has online consultations"
    return offering


@pytest.fixture
def opinion_offering(consultation_offering):
    offering = Offering.objects.filter(kind=Offering.SECOND_OPINION, clinic=consultation_offering.clinic,
                                       page=consultation_offering.page).select_related("clinic", "page").first()
    assert offering is not None
    return offering


def _client_for(user):
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def staff(consultation_offering):
    membership = ClinicMembership.objects.filter(clinic=consultation_offering.clinic).select_related("user").first()
    return with_mfa(membership.user)


@pytest.fixture
def staff_client(staff):
    return _client_for(staff)


@pytest.fixture
def foreign_staff(consultation_offering):
    membership = (ClinicMembership.objects.exclude(clinic=consultation_offering.clinic)
                  .exclude(user__clinic_memberships__clinic=consultation_offering.clinic)
                  .select_related("user").first())
    return with_mfa(membership.user)


@pytest.fixture
def foreign_staff_client(foreign_staff):
    return _client_for(foreign_staff)


def dicom_file(name):
    from pydicom.data import get_testdata_file

    with open(get_testdata_file(name), "rb") as handle:
        return handle.read()


def ct_series(count=3):
    """A small CT series made from pydicom's CT_small.dcm: one series, ``count`` instances."""
    import pydicom

    base = pydicom.dcmread(io.BytesIO(dicom_file("CT_small.dcm")))
    files = []
    for n in range(count, 0, -1):  # stored out of order: the viewer sorts by instance number
        base.InstanceNumber = n
        base.SOPInstanceUID = f"{base.SOPInstanceUID.rsplit('.', 1)[0]}.{1000 + n}"
        base.BodyPartExamined = "HEAD"
        x, y, _z = (float(v) for v in base.ImagePositionPatient)
        base.ImagePositionPatient = [x, y, -100.0 + 5.0 * n]  # one slice every 5 mm
        base.SliceLocation = -100.0 + 5.0 * n
        out = io.BytesIO()
        base.save_as(out, enforce_file_format=True)
        files.append((f"study/CT{n:03d}.dcm", out.getvalue()))
    return files


def study_zip(count=3, with_mr=True):
    entries = ct_series(count) + ([("study/MR001.dcm", dicom_file("MR_small.dcm"))] if with_mr else [])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("study/", b"")
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()

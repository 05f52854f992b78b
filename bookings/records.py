"""Patients' medical records: checked upload, private storage, who may read them, and the access log.

Every refusal is a ``RecordRejected`` whose message tells the patient what to do, in their language.
The type of a file is decided from its content (``filetype`` plus our own DICOM and ZIP checks),
never from the name or the content type the browser sent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import posixpath
import re
import stat
import zipfile

import filetype
from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from .models import ClinicMembership, MedicalRecord, RecordAccess

logger = logging.getLogger("emhana.records")

PDF, JPEG, PNG, DICOM, ZIP = "application/pdf", "image/jpeg", "image/png", "application/dicom", "application/zip"
ALLOWED_TYPES = (PDF, JPEG, PNG, DICOM, ZIP)
DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"
SNIFF_BYTES = 8192
# A ZIP may unpack to at most this many times the upload limit, in at most this many entries.
ZIP_EXPANSION_FACTOR = 20
ZIP_MAX_ENTRIES = 5000
ZIP_READ_CHUNK = 1024 * 1024
# Names a DICOM export may not carry: absolute paths, drive letters, parent references.
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RecordRejected(Exception):
    """An upload we refuse; ``message`` is translated and says what the patient can do about it."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class RecordUnavailable(Http404):
    """Not there, or not for this user: the same answer either way, so existence is not revealed."""


def allowed_types_text() -> str:
    return _("PDF, JPEG, PNG, DICOM, or a ZIP of DICOM files")


def max_size_text() -> str:
    return filesizeformat(settings.RECORD_MAX_BYTES)


def zip_max_entries() -> int:
    return getattr(settings, "RECORD_ZIP_MAX_ENTRIES", ZIP_MAX_ENTRIES)


def zip_max_total() -> int:
    return ZIP_EXPANSION_FACTOR * settings.RECORD_MAX_BYTES


# --- type sniffing ---------------------------------------------------------------------------

def is_dicom(head: bytes) -> bool:
    """DICOM Part 10: a 128-byte preamble, then the magic ``DICM``."""
    return head[DICOM_MAGIC_OFFSET:DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC


def sniff(head: bytes) -> str | None:
    """The MIME type of a file from its first bytes, or None when it is not a type we take."""
    # DICOM first: its preamble is free-form and may itself look like another format (often TIFF).
    if is_dicom(head):
        return DICOM
    kind = filetype.guess(head)
    if kind is None:
        return None
    # filetype tells a ZIP apart from Office documents, EPUB and JAR, which are ZIPs too: only a plain
    # ZIP is taken, and it is then checked entry by entry.
    return kind.mime if kind.mime in (PDF, JPEG, PNG, ZIP) else None


def _unsafe_name(name: str) -> bool:
    if not name or _CONTROL.search(name) or "\\" in name or name.startswith("/") or _DRIVE.match(name):
        return True
    parts = name.split("/")
    return any(part == ".." for part in parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_zip(fileobj) -> int:
    """Check that a ZIP is a real ZIP of DICOM files and safe to unpack; return the number of files.

    Refuses: damaged archives, encrypted entries, links, absolute or ``..`` names, more entries or more
    unpacked bytes than the caps (zip bombs), and any file that is neither DICOM nor a DICOMDIR.
    Every entry is read through once, so a CRC mismatch or a lying size header is caught too;
    Python's reader never yields more than an entry's declared size, so the caps bound the work.
    """
    fileobj.seek(0)
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise RecordRejected(_("This ZIP file is damaged or incomplete. Create the ZIP again and upload it.")) from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > zip_max_entries():
            raise RecordRejected(
                _("This ZIP holds more than %(count)d files. Split it into smaller ZIP files and upload each.")
                % {"count": zip_max_entries()})
        total = sum(info.file_size for info in infos)
        if total > zip_max_total():
            raise RecordRejected(
                _("This ZIP would unpack to more than %(size)s. Split it into smaller ZIP files and upload each.")
                % {"size": filesizeformat(zip_max_total())})
        files = 0
        seen = set()
        for info in infos:
            name = info.filename
            if _unsafe_name(name) or _is_symlink(info):
                raise RecordRejected(
                    _("The ZIP contains an unsafe name (“%(name)s”). Put the DICOM files in an ordinary "
                      "folder, create the ZIP again and upload it.") % {"name": _printable(name)})
            if info.flag_bits & 0x1:
                raise RecordRejected(_("The ZIP is protected by a password. Create it again without a password "
                                       "and upload it."))
            if info.is_dir():
                continue
            normalised = posixpath.normpath(name).lower()
            if normalised in seen:
                raise RecordRejected(
                    _("The ZIP contains “%(name)s” twice. Create the ZIP again and upload it.")
                    % {"name": _printable(name)})
            seen.add(normalised)
            base = posixpath.basename(name)
            try:
                with archive.open(info) as member:
                    head = member.read(DICOM_MAGIC_OFFSET + 4)
                    while member.read(ZIP_READ_CHUNK):  # reads to the end: checks the CRC
                        pass
            except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError, RuntimeError) as exc:
                raise RecordRejected(
                    _("This ZIP file is damaged or uses an unsupported compression. Create it again with "
                      "ordinary (deflate) compression and upload it.")) from exc
            if not (is_dicom(head) or base.upper() == "DICOMDIR"):
                raise RecordRejected(
                    _("The ZIP contains “%(name)s”, which is not a DICOM file. A ZIP may hold only DICOM images "
                      "(and DICOMDIR): remove other files, or upload PDFs and pictures one by one.")
                    % {"name": _printable(base)})
            files += 1
        if not files:
            raise RecordRejected(_("This ZIP file is empty. Add the DICOM files and upload it again."))
    return files


def _printable(name: str) -> str:
    return _CONTROL.sub("?", name)[:80]


# --- storing ---------------------------------------------------------------------------------

def _clean_original_name(name: str | None) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).strip().strip(".") or _("record")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot and len(ext) < 10 else name[:200]
    return name


def store_record(owner, uploaded_file, booking=None, description: str = "") -> MedicalRecord:
    """Check an uploaded medical file and keep it in private storage; return the new record.

    Raises ``RecordRejected`` with a message for the patient when the file is empty, too large, of a
    type we do not take (decided from its content), an unsafe ZIP, or attached to someone else's booking.
    Nothing is saved when it refuses.
    """
    if booking is not None and booking.user_id != owner.pk:
        raise RecordRejected(_("You can attach a file only to one of your own bookings."))

    size_hint = getattr(uploaded_file, "size", None)
    if size_hint is not None and size_hint > settings.RECORD_MAX_BYTES:
        raise RecordRejected(_too_large())

    digest = hashlib.sha256()
    size = 0
    head = b""
    for chunk in uploaded_file.chunks():
        if len(head) < SNIFF_BYTES:
            head += chunk[:SNIFF_BYTES - len(head)]
        size += len(chunk)
        if size > settings.RECORD_MAX_BYTES:
            raise RecordRejected(_too_large())
        digest.update(chunk)
    if size == 0:
        raise RecordRejected(_("The file is empty. Choose the file again, or export it again from the "
                               "program that made it."))

    content_type = sniff(head)
    if content_type is None:
        raise RecordRejected(
            _("We cannot accept this type of file. Upload %(types)s. If you have a Word document or a photo "
              "in another format, save it as PDF first.") % {"types": allowed_types_text()})
    if content_type == ZIP:
        check_zip(uploaded_file)

    uploaded_file.seek(0)
    record = MedicalRecord(
        owner=owner, booking=booking, original_name=_clean_original_name(uploaded_file.name),
        content_type=content_type, size=size, sha256=digest.hexdigest(), description=(description or "")[:200],
    )
    # The stored name is records/<owner>/<record uuid>: nothing from the patient reaches the file system.
    record.file.save(record.original_name, uploaded_file, save=False)
    try:
        with transaction.atomic():
            record.save()
    except Exception:
        record.file.storage.delete(record.file.name)
        raise
    logger.info("record %s stored for user %s (%s, %d bytes)", record.pk, owner.pk, content_type, size)
    return record


def _too_large() -> str:
    return _("The file is larger than %(size)s. Make it smaller (for example, split a long scan into parts) "
             "and upload again.") % {"size": max_size_text()}


# --- reading ---------------------------------------------------------------------------------

def can_read(user, record: MedicalRecord) -> bool:
    """Only the owner, and staff of the clinic of the booking the record is attached to."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if record.owner_id == user.pk:
        return True
    if record.booking_id is None:
        return False
    return ClinicMembership.objects.filter(user=user, clinic_id=record.booking.clinic_id).exists()


def staff_mfa_missing(user, record: MedicalRecord) -> bool:
    """True when someone other than the owner (clinic staff) would read without two-factor authentication
    set up. Records are read outside /desk/, so StaffMFAMiddleware does not cover this: we check here."""
    if record.owner_id == user.pk or not settings.EMHANA_REQUIRE_STAFF_MFA:
        return False
    from portal.middleware import needs_mfa

    return needs_mfa(user)


def read_record(user, record: MedicalRecord, ip: str | None = None, action: str = "download"):
    """Open a record for ``user`` and log the access; ``RecordUnavailable`` (a 404) when not allowed,
    including clinic staff who have not set up two-factor authentication."""
    if not can_read(user, record) or staff_mfa_missing(user, record):
        raise RecordUnavailable()
    try:
        handle = record.file.open("rb")
    except (FileNotFoundError, ValueError) as exc:
        logger.error("record %s: file missing from private storage", record.pk)
        raise RecordUnavailable() from exc
    RecordAccess.objects.create(record=record, user=user, action=action, ip=_valid_ip(ip))
    return handle


def _valid_ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((ip or "").strip()))
    except ValueError:
        return None


def records_for_clinic_staff(user, booking):
    """The patient's records a staff member of the booking's clinic may read (those attached to bookings
    at that clinic); none for anyone else."""
    if not ClinicMembership.objects.filter(user=user, clinic_id=booking.clinic_id).exists():
        return MedicalRecord.objects.none()
    return (MedicalRecord.objects.filter(owner_id=booking.user_id, booking__clinic_id=booking.clinic_id)
            .select_related("booking"))

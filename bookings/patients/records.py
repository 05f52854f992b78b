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
import struct
import time
import unicodedata
import zipfile

import filetype
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from bookings.models import MedicalRecord, RecordAccess
from bookings.patients import consent
from portal.ratelimit import allow
from portal.staff import needs_mfa

logger = logging.getLogger("emhana.records")

PDF, JPEG, PNG, DICOM, ZIP = "application/pdf", "image/jpeg", "image/png", "application/dicom", "application/zip"
ALLOWED_TYPES = (PDF, JPEG, PNG, DICOM, ZIP)
DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"
SNIFF_BYTES = 8192
# A ZIP is checked by unpacking it in a stream, within budgets (each can be set in settings as RECORD_ZIP_*):
# at most RATIO times its own size (but at least what one may upload unzipped, and never more than MAX_BYTES),
# at most MAX_SECONDS of wall-clock time, at most MAX_ENTRIES entries. The sizes an archive declares are only
# used to refuse early: the bytes actually unpacked are counted.
ZIP_MAX_RATIO = 10
ZIP_MAX_BYTES = 500 * 1024 * 1024
ZIP_MAX_SECONDS = 2.0
ZIP_MAX_ENTRIES = 5000
ZIP_READ_CHUNK = 256 * 1024
# Per patient: at most this many uploads (counted as they are tried) per window, and this much kept in all.
UPLOAD_RATE = "20/h"
UPLOAD_QUOTA_BYTES = 2 * 1024 * 1024 * 1024
# The name a download gets ends with the type we found in the file, never the uploader's extension.
EXTENSIONS = {PDF: ("pdf",), JPEG: ("jpg", "jpeg", "jpe"), PNG: ("png",), DICOM: ("dcm", "dicom", "dic"),
              ZIP: ("zip",)}
_FILENAME_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
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


def zip_max_total(upload_size: int | None = None) -> int:
    """How many bytes a ZIP of ``upload_size`` bytes may unpack to: RATIO times its size, at least the upload
    limit (what one could send unzipped anyway), never more than RECORD_ZIP_MAX_BYTES."""
    cap = getattr(settings, "RECORD_ZIP_MAX_BYTES", ZIP_MAX_BYTES)
    if upload_size is None:
        return cap
    ratio = getattr(settings, "RECORD_ZIP_MAX_RATIO", ZIP_MAX_RATIO)
    return min(cap, max(settings.RECORD_MAX_BYTES, ratio * upload_size))


def zip_max_seconds() -> float:
    return getattr(settings, "RECORD_ZIP_MAX_SECONDS", ZIP_MAX_SECONDS)


def upload_rate() -> str:
    return getattr(settings, "RECORD_UPLOAD_RATE", UPLOAD_RATE)


def upload_quota() -> int:
    return getattr(settings, "RECORD_QUOTA_BYTES", UPLOAD_QUOTA_BYTES)


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


# The fixed parts of the ZIP records read before Python's reader is trusted with the archive (APPNOTE 4.3).
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD64_SIGNATURE = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_CENTRAL_SIGNATURE = b"PK\x01\x02"


def _more_entries_than(fileobj, limit: int) -> bool:
    """True when the archive's central directory holds more than ``limit`` entries.

    ``zipfile.ZipFile`` builds an object for every entry before anyone can count them: a 47 MB central
    directory of tiny entries costs it about 10 s and 470 MB. So the entries are counted here first,
    walking the central directory the way ``zipfile`` will (from the end record, over its declared size)
    and stopping at ``limit + 1``. Whatever does not parse is left for ``zipfile`` to refuse as damaged.
    """
    fileobj.seek(0, 2)
    end = fileobj.tell()
    tail_start = max(0, end - _EOCD.size - 0xFFFF)
    fileobj.seek(tail_start)
    tail = fileobj.read(end - tail_start)
    if tail[-_EOCD.size:-_EOCD.size + 4] == _EOCD_SIGNATURE and tail[-2:] == b"\0\0":
        at = len(tail) - _EOCD.size
    else:
        at = tail.rfind(_EOCD_SIGNATURE)
    if at < 0 or len(tail) - at < _EOCD.size:
        return False
    fields = _EOCD.unpack_from(tail, at)
    entries, directory_size = fields[4], fields[5]
    directory_end = tail_start + at
    locator_at = directory_end - _EOCD64_LOCATOR.size
    if locator_at - _EOCD64.size >= 0:
        fileobj.seek(locator_at)
        if fileobj.read(4) == _EOCD64_LOCATOR_SIGNATURE:
            fileobj.seek(locator_at - _EOCD64.size)
            record = fileobj.read(_EOCD64.size)
            if len(record) == _EOCD64.size and record[:4] == _EOCD64_SIGNATURE:
                fields64 = _EOCD64.unpack(record)
                entries, directory_size = fields64[7], fields64[8]
                directory_end = locator_at - _EOCD64.size
    if entries > limit:
        return True
    position = directory_end - directory_size
    if position < 0:
        return False
    fileobj.seek(position)
    walked = counted = 0
    while walked < directory_size:
        header = fileobj.read(_CENTRAL.size)
        if len(header) < _CENTRAL.size or header[:4] != _CENTRAL_SIGNATURE:
            return False
        fields = _CENTRAL.unpack(header)
        skip = fields[12] + fields[13] + fields[14]  # name, extra field, comment
        fileobj.seek(skip, 1)
        walked += _CENTRAL.size + skip
        counted += 1
        if counted > limit:
            return True
    return False


def _too_many_entries() -> str:
    return (_("This ZIP holds more than %(count)d files. Split it into smaller ZIP files and upload each.")
            % {"count": zip_max_entries()})


def _too_much_unpacked(budget: int) -> str:
    return (_("This ZIP would unpack to more than %(size)s. Split it into smaller ZIP files and upload each.")
            % {"size": filesizeformat(budget)})


def _too_slow() -> str:
    return _("This ZIP takes too long to check. Split it into smaller ZIP files and upload each.")


def check_zip(fileobj, size: int | None = None) -> int:
    """Check that a ZIP is a real ZIP of DICOM files and safe to unpack; return the number of files.

    Refuses: damaged archives, encrypted entries, links, absolute or ``..`` names, more entries than the
    cap, and any file that is neither DICOM nor a DICOMDIR. Every entry is read through once (so a CRC
    mismatch or a lying size header is caught), in a stream, counting the bytes it really unpacks to:
    the check stops as soon as they pass ``zip_max_total(size)`` or it has run ``zip_max_seconds()``
    (zip bombs), so its cost is bounded whatever the archive declares.
    """
    started = time.monotonic()
    deadline = started + zip_max_seconds()
    if size is None:
        fileobj.seek(0, 2)
        size = fileobj.tell()
    budget = zip_max_total(size)
    fileobj.seek(0)
    if _more_entries_than(fileobj, zip_max_entries()):
        raise RecordRejected(_too_many_entries())
    fileobj.seek(0)
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise RecordRejected(_("This ZIP file is damaged or incomplete. Create the ZIP again and upload it.")) from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > zip_max_entries():
            raise RecordRejected(_too_many_entries())
        # What the archive declares may be a lie; it is used only to refuse early, never to accept.
        if sum(info.file_size for info in infos) > budget:
            raise RecordRejected(_too_much_unpacked(budget))
        unpacked = 0
        files = 0
        seen = set()
        for info in infos:
            if time.monotonic() > deadline:
                raise RecordRejected(_too_slow())
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
                    chunk = head = member.read(DICOM_MAGIC_OFFSET + 4)
                    while chunk:  # reads to the end: checks the CRC
                        unpacked += len(chunk)
                        if unpacked > budget:
                            raise RecordRejected(_too_much_unpacked(budget))
                        if time.monotonic() > deadline:
                            raise RecordRejected(_too_slow())
                        chunk = member.read(ZIP_READ_CHUNK)
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
    logger.debug("zip checked: %d files, %d bytes unpacked in %.3f s", files, unpacked, time.monotonic() - started)
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
    type we do not take (decided from its content), an unsafe ZIP, attached to someone else's booking,
    over the patient's upload rate (``upload_rate()``, counted per try) or storage quota (``upload_quota()``).
    Nothing is saved when it refuses.
    """
    if booking is not None and booking.user_id != owner.pk:
        raise RecordRejected(_("You can attach a file only to one of your own bookings."))

    size_hint = getattr(uploaded_file, "size", None)
    if size_hint is not None and size_hint > settings.RECORD_MAX_BYTES:
        raise RecordRejected(_too_large())
    if size_hint is not None:
        _check_quota(owner, size_hint)
    # Counted before the file is read, so that refused files (zip bombs included) use up the allowance too.
    if not allow("record-upload", str(owner.pk), upload_rate()):
        logger.warning("record upload refused for user %s: upload rate %s used up", owner.pk, upload_rate())
        raise RecordRejected(_("You have sent too many files in a short time. Please wait an hour and upload "
                               "this file again."))

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
        _check_zip_alone(owner, uploaded_file, size)

    uploaded_file.seek(0)
    record = MedicalRecord(
        owner=owner, booking=booking, original_name=_clean_original_name(uploaded_file.name),
        content_type=content_type, size=size, sha256=digest.hexdigest(), description=(description or "")[:200],
    )
    # The stored name is records/<owner>/<record uuid>: nothing from the patient reaches the file system.
    record.file.save(record.original_name, uploaded_file, save=False)
    try:
        with transaction.atomic():
            # One upload at a time per patient past this point, so that racing uploads cannot all fit the quota.
            list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk"))
            _check_quota(owner, size)
            record.save()
    except Exception:
        record.file.storage.delete(record.file.name)
        raise
    logger.info("record %s stored for user %s (%s, %d bytes)", record.pk, owner.pk, content_type, size)
    return record


def _check_zip_alone(owner, uploaded_file, size: int) -> None:
    """Check a ZIP, one at a time per patient: each check is bounded in time, and one patient's parallel
    uploads then cannot hold every web worker at once."""
    key = f"record-zip-check:{owner.pk}"
    if not cache.add(key, 1, timeout=int(zip_max_seconds()) + 60):
        raise RecordRejected(_("Another ZIP file of yours is still being checked. Please wait a minute and upload "
                               "this one again."))
    try:
        check_zip(uploaded_file, size)
    finally:
        cache.delete(key)


def stored_bytes(owner) -> int:
    return MedicalRecord.objects.filter(owner=owner).aggregate(total=Sum("size"))["total"] or 0


def _check_quota(owner, size: int) -> None:
    quota = upload_quota()
    used = stored_bytes(owner)
    if used + size > quota:
        raise RecordRejected(
            _("There is not enough room left for this file: we keep up to %(quota)s of files for each patient, "
              "and %(left)s is left. Upload a smaller file, or write to the clinic through your booking if it "
              "needs more.") % {"quota": filesizeformat(quota), "left": filesizeformat(max(0, quota - used))})


def _too_large() -> str:
    return _("The file is larger than %(size)s. Make it smaller (for example, split a long scan into parts) "
             "and upload again.") % {"size": max_size_text()}


# --- downloading -----------------------------------------------------------------------------

def download_content_type(record: MedicalRecord) -> str:
    """The type found in the file when it was stored; anything else is served as opaque bytes."""
    return record.content_type if record.content_type in ALLOWED_TYPES else "application/octet-stream"


def download_name(record: MedicalRecord) -> str:
    """The file name a download gets: the uploader's base name, made safe, with the extension of the type
    found in the content (``report.html`` that is a PDF downloads as ``report.pdf``)."""
    name = unicodedata.normalize("NFC", record.original_name or "")
    # invisible formatting characters (e.g. right-to-left override) could disguise the real extension
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cf")
    name = _FILENAME_UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    stem = re.sub(r"\s+", " ", stem).strip(" .")[:150].rstrip(" .") or _("record")
    if stem.upper().split(".")[0] in _WINDOWS_RESERVED:
        stem = f"{stem}_"
    allowed = EXTENSIONS.get(download_content_type(record), ("bin",))
    extension = extension.lower() if extension.lower() in allowed else allowed[0]
    return f"{stem}.{extension}"


# --- reading ---------------------------------------------------------------------------------

def can_read(user, record: MedicalRecord) -> bool:
    """Only the owner, and staff of the clinic of the booking the record is attached to while the patient's
    consent to share with it stands (bookings.patients.consent)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if record.owner_id == user.pk:
        return True
    if record.booking_id is None:
        return False
    return consent.staff_may_read(user, record.booking)


def staff_mfa_missing(user, record: MedicalRecord) -> bool:
    """True when someone other than the owner (clinic staff) would read without two-factor authentication
    set up. Records are read outside /desk/, so StaffMFAMiddleware does not cover this: we check here."""
    if record.owner_id == user.pk or not settings.EMHANA_REQUIRE_STAFF_MFA:
        return False
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
    RecordAccess.objects.create(record=record, user=user, action=action, ip=_valid_ip(ip), kind=RecordAccess.RECORD,
                                patient_id=record.owner_id, booking_id=record.booking_id, target=str(record.pk))
    return handle


def _valid_ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((ip or "").strip()))
    except ValueError:
        return None


def records_for_clinic_staff(user, booking):
    """The patient's records a staff member of the booking's clinic may read (those attached to bookings
    at that clinic); none for anyone else."""
    if not consent.staff_may_read(user, booking):
        return MedicalRecord.objects.none()
    return (MedicalRecord.objects.filter(owner_id=booking.user_id, booking__clinic_id=booking.clinic_id)
            .select_related("booking"))

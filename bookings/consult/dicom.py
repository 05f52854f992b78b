"""DICOM metadata (pydicom) and ZIP members, read only through the access-checked, access-logged record reads.

A summary (modality, study date, body part, series and image counts, and the viewer's order of images) is
read once per upload and kept in ``DicomSummary``; reading it logs one access ("metadata") by whoever first
looked. Only headers are parsed (``stop_before_pixels``), within the limits the upload check already set.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from datetime import date

import pydicom
from pydicom.errors import InvalidDicomError

from bookings.consult.models import DicomSummary
from bookings.models import MedicalRecord
from bookings.patients import records as record_service

log = logging.getLogger("emhana.consult")

DICOM, ZIP = record_service.DICOM, record_service.ZIP
MEMBER_CHUNK = 256 * 1024


def is_study(record: MedicalRecord) -> bool:
    return record.content_type in (DICOM, ZIP)


def _date(value) -> date | None:
    text = str(value or "").strip()
    if len(text) >= 8 and text[:8].isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return None
    return None


def seekable(handle, max_memory=8 * 1024 * 1024):
    """The opened record as a seekable file: as it is when it can seek, else copied into a spooled temporary
    file (records may be decrypted as a stream). The caller closes what is returned (and the handle)."""
    try:
        if handle.seekable():
            return handle
    except (AttributeError, ValueError, OSError):
        pass
    spooled = tempfile.SpooledTemporaryFile(max_size=max_memory)
    shutil.copyfileobj(handle, spooled, MEMBER_CHUNK)
    spooled.seek(0)
    return spooled


def _header(fileobj):
    return pydicom.dcmread(fileobj, stop_before_pixels=True, force=False)


def _number(value, default=0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def summarise_datasets(headers) -> dict:
    """From [(archive index or None, dataset)]: the summary fields and the series in display order."""
    series: dict[str, dict] = {}
    modalities, parts, dates, descriptions = [], [], [], []
    images = 0
    for index, ds in headers:
        uid = str(ds.get("SeriesInstanceUID", "") or f"unknown-{len(series)}")
        entry = series.setdefault(uid, {"uid": uid, "description": str(ds.get("SeriesDescription", "") or ""),
                                        "modality": str(ds.get("Modality", "") or ""),
                                        "number": _number(ds.get("SeriesNumber"), 0), "items": []})
        frames = int(_number(ds.get("NumberOfFrames"), 1) or 1)
        images += max(frames, 1)
        position = ds.get("ImagePositionPatient")
        entry["items"].append((_number(ds.get("InstanceNumber"), 0),
                               _number(position[2]) if position is not None and len(position) > 2 else 0, index))
        for value, bucket in ((ds.get("Modality"), modalities), (ds.get("BodyPartExamined"), parts),
                              (ds.get("StudyDescription"), descriptions)):
            text = str(value or "").strip()
            if text and text not in bucket:
                bucket.append(text)
        study_date = _date(ds.get("StudyDate"))
        if study_date:
            dates.append(study_date)
    ordered = []
    for entry in sorted(series.values(), key=lambda s: (s["number"], s["uid"])):
        members = [index for _n, _z, index in sorted(entry.pop("items"), key=lambda item: (item[0], item[1]))]
        entry.pop("number")
        ordered.append({**entry, "members": members, "count": len(members)})
    return {"modalities": ", ".join(modalities)[:100], "body_parts": ", ".join(parts)[:200],
            "study_description": "; ".join(descriptions)[:200], "study_date": min(dates) if dates else None,
            "series_count": len(ordered), "image_count": images, "series": ordered}


def read_headers(record: MedicalRecord, handle) -> list:
    """[(archive index or None, dataset)] for every DICOM file in the upload (DICOMDIR and damaged files left out)."""
    if record.content_type == DICOM:
        try:
            return [(None, _header(handle))]
        except (InvalidDicomError, ValueError, EOFError, OSError) as exc:
            log.info("record %s: DICOM header unreadable: %s", record.pk, exc)
            return []
    headers = []
    with zipfile.ZipFile(handle) as archive:
        for index, info in enumerate(archive.infolist()):
            if info.is_dir() or info.filename.rsplit("/", 1)[-1].upper() == "DICOMDIR":
                continue
            try:
                with archive.open(info) as member:
                    headers.append((index, _header(member)))
            except (InvalidDicomError, ValueError, EOFError, OSError, zipfile.BadZipFile, NotImplementedError) as exc:
                log.info("record %s member %d: DICOM header unreadable: %s", record.pk, index, exc)
    return headers


def summary(user, record: MedicalRecord, ip: str | None = None) -> DicomSummary | None:
    """The record's DICOM summary, read now (access-checked and logged) if not read since the file was stored.

    ``RecordUnavailable`` (404) for anyone who may not read the record."""
    if not is_study(record):
        return None
    existing = DicomSummary.objects.filter(record=record, sha256=record.sha256).first()
    if existing is not None:
        if not record_service.can_read(user, record) or record_service.staff_mfa_missing(user, record):
            raise record_service.RecordUnavailable()
        return existing
    handle = record_service.read_record(user, record, ip=ip, action="metadata")
    with handle, seekable(handle) as readable:
        try:
            headers = read_headers(record, readable)
        except zipfile.BadZipFile:
            headers = []
    fields = summarise_datasets(headers) if headers else {}
    error = "" if headers else "unreadable"
    made, _created = DicomSummary.objects.update_or_create(record=record, defaults={
        "sha256": record.sha256, "error": error, **fields})
    return made


def viewer_series(summary_obj: DicomSummary) -> list[dict]:
    """The study's series, the one with the most images first (the viewer opens it)."""
    return sorted(summary_obj.series or [], key=lambda s: -s.get("count", 0))


def viewer_members(summary_obj: DicomSummary, series: int = 0) -> list[int | None]:
    """The archive indexes of one series' images in viewing order (one series at a time: a series is one volume)."""
    ordered = viewer_series(summary_obj)
    return list(ordered[series]["members"]) if 0 <= series < len(ordered) else []


def open_member(user, record: MedicalRecord, index: int, ip: str | None = None):
    """(size, iterator of bytes) of the archive's ``index``-th entry, if it is a DICOM file; access-checked and
    logged as "view". ``RecordUnavailable`` (404) otherwise — not allowed, not a ZIP, no such entry."""
    if record.content_type != ZIP or index < 0:
        raise record_service.RecordUnavailable()
    if index >= record_service.zip_max_entries():
        raise record_service.RecordUnavailable()
    opened = record_service.read_record(user, record, ip=ip, action="view")
    handle = seekable(opened)
    if handle is not opened:
        opened.close()
    try:
        archive = zipfile.ZipFile(handle)
        infos = archive.infolist()
        if index >= len(infos) or infos[index].is_dir():
            raise record_service.RecordUnavailable()
        info = infos[index]
        member = archive.open(info)
        head = member.read(record_service.DICOM_MAGIC_OFFSET + 4)
        if not record_service.is_dicom(head):
            member.close()
            raise record_service.RecordUnavailable()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        handle.close()
        raise record_service.RecordUnavailable() from exc
    except record_service.RecordUnavailable:
        handle.close()
        raise

    def stream():
        try:
            yield head
            while chunk := member.read(MEMBER_CHUNK):
                yield chunk
        finally:
            member.close()
            archive.close()
            handle.close()

    return info.file_size, stream()

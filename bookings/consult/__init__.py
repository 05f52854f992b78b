"""Before the trip: online consultations with a clinician (a video room on Jitsi Meet or another provider),
second opinions from the patient's records without a call, and DICOM studies read in the desk's viewer.

models.py   Consultation (the booking's unguessable room), SecondOpinion (the clinician's structured opinion),
            DicomSummary (what pydicom read from an upload: modality, study date, body part, series, images)
services.py who may see the room link and when; writing, sending and converting an opinion
dicom.py    reading DICOM metadata and ZIP members through the access-checked, access-logged record reads
pdf.py      the opinion as a PDF (fpdf2; DejaVu for Cyrillic, Noto CJK for Chinese)
views.py    the patient's and the desk's pages; templatetags.py the panels on the booking pages
"""

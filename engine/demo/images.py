"""DICOM files for the sample hospital's imaging exams, written with adapters.dicom_files.

Each exam that has a STUDY_UID in the RIS view gets a study whose AccessionNumber, PatientID,
StudyInstanceUID and patient demographics are the report's, so the images and the exam index meet
on the platforms (jilin links them by hospitalCode + accessNumber and studyUid). UIDs are derived,
not random, so one seed always writes the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom import dcmread

from adapters.dicom import key_attributes
from adapters.dicom_files import synthetic_instance, write_instance

INSTANCES_PER_MODALITY = {"CT": 3, "MR": 2, "DR": 1}
DICOM_SEX = {"男": "M", "女": "F"}


def write_study(directory: Path, exam: dict[str, Any], *, age: int, institution: str) -> list[Path]:
    """The images of one exam report row (V_RIS_EXAM_REPORT), one series, as Part-10 files."""
    study_uid = exam["STUDY_UID"]
    series_uid = f"{study_uid}.1"
    exam_time = exam["EXAM_TIME"]  # yyyy-MM-dd HH:mm:ss
    out = []
    d = directory / exam["ACCESSION_NO"]
    d.mkdir(parents=True, exist_ok=True)
    for n in range(1, INSTANCES_PER_MODALITY.get(exam["MODALITY"], 1) + 1):
        ds = synthetic_instance(
            patient_id=exam["PATIENT_ID"], patient_name=exam["PATIENT_NAME"], accession=exam["ACCESSION_NO"],
            study_uid=study_uid, series_uid=series_uid, sop_uid=f"{series_uid}.{n}", modality=exam["MODALITY"],
            study_date=exam_time[:10].replace("-", ""), instance_number=n, charset="ISO_IR 192",
        )
        ds.StudyTime = exam_time[11:].replace(":", "")
        ds.InstitutionName = institution
        ds.PatientSex = DICOM_SEX.get(exam["SEX"], "O")
        ds.PatientBirthDate = (exam.get("BIRTH_DATE") or "").replace("-", "")
        ds.PatientAge = f"{min(age, 999):03d}Y"
        ds.StudyDescription = exam["EXAM_ITEM_NAME"]
        ds.BodyPartExamined = exam.get("BODY_PART_CODE") or ""
        out.append(write_instance(ds, d / f"{ds.SOPInstanceUID}.dcm"))
    return out


def instance_message(path: Path) -> dict[str, Any]:
    """What the bridge's DICOM SCP hands on for this file after a C-STORE: the key attributes it
    reads (adapters.dicom.key_attributes) plus the file, as the runtime adds it (`file`)."""
    ds = dcmread(path, stop_before_pixels=True)
    body: dict[str, Any] = key_attributes(ds)
    body["file"] = {"path": str(path), "filename": path.name, "content_type": "application/dicom", "size": path.stat().st_size}
    return body

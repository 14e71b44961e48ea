"""Synthetic DICOM instances (never a real patient) for tests, twins and the demo's SCU.

Small CT or Secondary Capture images with made-up patient data and fresh UIDs under a private
test root, written as Part-10 files. `dataset_offset` finds where the dataset starts after the
file meta, which is how "byte-identical" is checked: the dataset bytes a receiver stores must equal
the dataset bytes of the file that was sent.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

UID_ROOT = "1.2.826.0.1.3680043.8.498."
"""pydicom's registered root for generated UIDs: never collides with a hospital's own."""


def synthetic_instance(
    *,
    patient_id: str = "SYN0001",
    patient_name: str = "SYNTHETIC^PATIENT",
    accession: str = "SYNACC0001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    modality: str = "CT",
    study_date: str = "20240511",
    series_number: int = 1,
    instance_number: int = 1,
    size: int = 8,
    transfer_syntax: str = ExplicitVRLittleEndian,
    charset: str | None = None,
) -> Dataset:
    """One tiny image: a CT Image (modality CT) or a Secondary Capture (anything else).

    `charset` sets (0008,0005) (e.g. 'ISO_IR 192' for a Chinese `patient_name`).
    """
    ct = modality == "CT"
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CTImageStorage if ct else SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid(UID_ROOT)
    ds.StudyDate = study_date
    ds.StudyTime = "081734"
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.InstitutionName = "Synthetic Hospital"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.PatientAge = "054Y"
    ds.StudyInstanceUID = study_uid or generate_uid(UID_ROOT)
    ds.SeriesInstanceUID = series_uid or generate_uid(UID_ROOT)
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if ct:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.KVP = 120
    else:
        ds.ConversionType = "WSD"
    ds.PixelData = struct.pack(f"<{size * size}H", *((i * 37 + instance_number) % 4096 for i in range(size * size)))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    return ds


def write_instance(ds: Dataset, path: str | Path) -> Path:
    """Write a Part-10 file: 128-byte preamble, DICM, file meta, dataset in its transfer syntax."""
    p = Path(path)
    ds.save_as(p, enforce_file_format=True)
    return p


def synthetic_study(directory: str | Path, count: int = 3, **kw: object) -> list[Path]:
    """`count` instances of one study and series, numbered 1..count, as files in `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(UID_ROOT), generate_uid(UID_ROOT)
    out = []
    for n in range(1, count + 1):
        ds = synthetic_instance(study_uid=study, series_uid=series, instance_number=n, **kw)  # type: ignore[arg-type]
        out.append(write_instance(ds, d / f"{ds.SOPInstanceUID}.dcm"))
    return out


def dataset_offset(data: bytes) -> int:
    """Where the dataset starts in a Part-10 file: after preamble, 'DICM' and the file meta group,
    whose length (0002,0000) is read as written (file meta is always Explicit VR Little Endian)."""
    if len(data) < 144 or data[128:132] != b"DICM":
        raise ValueError("not a DICOM Part-10 file (no DICM prefix at offset 128)")
    group, element = struct.unpack_from("<HH", data, 132)
    if (group, element) != (2, 0) or data[136:138] != b"UL":
        raise ValueError("file meta does not start with its group length (0002,0000) UL")
    (length,) = struct.unpack_from("<I", data, 140)
    return 144 + length


def dataset_bytes(data: bytes) -> bytes:
    """The encoded dataset of a Part-10 file, file meta excluded."""
    return data[dataset_offset(data) :]

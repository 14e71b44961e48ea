"""The demo's synthetic hospital: `build_hospital` writes the LIS/PACS database, the HIS requests and
the DICOM files that the README's demo bridge carries to the five platform twins. Synthetic only."""

from engine.demo.sample import HospitalData, Patient, build_hospital

__all__ = ["HospitalData", "Patient", "build_hospital"]

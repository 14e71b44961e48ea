"""A deterministic synthetic hospital for the demo bridge (and its tests).

`build_hospital(dir)` writes `hospital.db` (the LIS and RIS views the bridge polls) and the DICOM
files the demo's SCU sends, and returns every record the hospital will produce — view rows, HIS
request bodies, DICOM instance messages — so a demo can count what each platform must receive and a
test can push each record through its mapping chain. One seed always gives the same hospital on a
fixed working day (no clock, no random UIDs), so demo output and test expectations are stable.
All people, numbers and reports are made up; ID numbers are shaped and check-digited like real ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.dicom_files import UID_ROOT
from engine.demo import catalog as cat
from engine.demo import people
from engine.demo.db import write_database
from engine.demo.images import instance_message, write_study

DAY = dt.date(2024, 5, 13)
"""The demo's working day. Fixed so that a seed reproduces the same hospital byte for byte."""

VISIT_PLAN = ("O", "I", "P", "O", "E", "O", "I", "P")
"""Visit type per patient, cycled (LIS codes: O 门诊, E 急诊, I 住院, P 体检): every route gets records."""
VISIT_WORDS = {"O": "门诊", "E": "急诊", "I": "住院", "P": "体检"}
VISIT_PREFIX = {"O": "MZ", "E": "JZ", "I": "ZY", "P": "TJ"}
LIS_SEX = {"M": "M", "F": "F"}
WORD_SEX = {"M": "男", "F": "女"}
FMT = "%Y-%m-%d %H:%M:%S"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@dataclass(frozen=True, slots=True)
class Patient:
    """One synthetic patient and the visit during which every record about them is produced."""

    patient_id: str
    name: str
    sex: str
    """M or F (each source writes it in its own dictionary)."""
    birth: dt.date
    id_card: str
    phone: str
    card_no: str
    address: str
    visit_type: str
    """O, E, I or P (LIS codes)."""
    visit_no: str
    visit_date: dt.date
    dept: cat.Dept
    doctor: cat.Staff
    diagnosis: tuple[str, str, str]
    """(ICD-10 code, name, chief complaint)."""
    ward: tuple[str, str] | None = None
    bed_no: str | None = None

    @property
    def age(self) -> int:
        return people.age_at(self.birth, DAY)


@dataclass(frozen=True)
class HospitalData:
    """Everything `build_hospital` produced. Records are in the form each source hands them to the
    bridge: view rows as the poller delivers them, HIS bodies as posted, DICOM messages as the SCP
    passes them on (key attributes + `file`)."""

    root: Path
    database: Path
    patients: tuple[Patient, ...]
    lab_reports: tuple[tuple[dict[str, Any], ...], ...]
    """V_LIS_REPORT_RESULT rows, grouped by report (a grouped poller's record is one tuple, as a list)."""
    exam_reports: tuple[dict[str, Any], ...]
    """V_RIS_EXAM_REPORT rows, one per report."""
    recognition_queries: tuple[dict[str, Any], ...]
    """hospital_his/recognition_query bodies (POST /his/mr/recognition-query)."""
    online_visits: tuple[dict[str, Any], ...]
    """hospital_his/online_visit bodies (POST /his/ih/online-visit)."""
    dicom_files: tuple[Path, ...]
    dicom_instances: tuple[dict[str, Any], ...] = field(default=())
    """hospital_pacs/dicom_instance messages, one per file, in the order of dicom_files."""

    @property
    def lab_rows(self) -> list[dict[str, Any]]:
        """Every LIS view row in watermark order (what an ungrouped poller delivers one by one)."""
        return [r for rows in self.lab_reports for r in rows]

    @property
    def pe_lab_rows(self) -> list[dict[str, Any]]:
        """Rows of physical-examination patients: what the pe_system route passes (PATIENT_TYPE = P)."""
        return [r for r in self.lab_rows if r["PATIENT_TYPE"] == "P"]

    @property
    def pe_exam_reports(self) -> list[dict[str, Any]]:
        """Exam reports of physical-examination patients (PATIENT_SOURCE = 体检)."""
        return [r for r in self.exam_reports if r["PATIENT_SOURCE"] == "体检"]

    def his_requests(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(source interface, HTTP path, JSON body) of every HIS call, in the order the HIS makes them."""
        out = [("hospital_his/recognition_query", "/his/mr/recognition-query", q) for q in self.recognition_queries]
        out += [("hospital_his/online_visit", "/his/ih/online-visit", v) for v in self.online_visits]
        return out

    def expected_deliveries(self) -> dict[str, int]:
        """Messages each target interface must receive through the demo bridge's routes."""
        return {
            "xinjiang_mr/ArchiveAutoReport.lab": len(self.lab_reports),
            "xinjiang_mr/ArchiveAutoReport.exam": len(self.exam_reports),
            "jilin_imaging/savePatientExam": len(self.exam_reports),
            "jilin_imaging/uploadDicom": len(self.dicom_instances),
            "pe_system/lis_pubReport": len(self.pe_lab_rows),
            "pe_system/pacs_pubReport": len(self.pe_exam_reports),
            "city_lab_mr/HR01": len(self.recognition_queries),
            "wedoctor_supervision/A2000": len(self.online_visits),
            "wedoctor_supervision/A2001": len(self.online_visits),
        }


def _patients(rng: random.Random, count: int) -> list[Patient]:
    ids = rng.sample(range(100000, 999999), count)
    out = []
    for i in range(count):
        vt = VISIT_PLAN[i % len(VISIT_PLAN)]
        sex = "MF"[i % 2]
        birth = people.birth_date(rng, at=DAY, min_age=19, max_age=82)
        area, area_name = rng.choice(people.AREAS)
        if vt == "P":
            dept, doctor = cat.PE_CENTRE, cat.PE_DOCTOR
        else:
            dept = rng.choice(cat.CLINICS[2:] if vt == "I" else cat.CLINICS[:2])
            doctor = cat.CLINICIANS[dept]
        ward = cat.WARDS.get(dept) if vt == "I" else None
        out.append(Patient(
            patient_id=f"P{ids[i]}", name=people.person_name(rng, sex), sex=sex, birth=birth,
            id_card=people.resident_id(area, birth, sex, rng), phone=people.mobile(rng),
            card_no=f"K{rng.randrange(10**7, 10**8)}", address=people.address(rng, area_name), visit_type=vt,
            visit_no=f"{VISIT_PREFIX[vt]}{DAY:%Y%m%d}{i + 1:04d}",
            visit_date=DAY - dt.timedelta(days=rng.randrange(1, 6)) if vt == "I" else DAY,
            dept=dept, doctor=doctor, diagnosis=rng.choice(cat.DIAGNOSES[dept]), ward=ward,
            bed_no=f"{rng.randrange(1, 40):02d}" if ward else None,
        ))
    return out


def _lab_value(rng: random.Random, item: cat.LabItem) -> tuple[str, str, str]:
    """(result, flag, critical flag): mostly normal, sometimes high or low, rarely a critical glucose."""
    roll = rng.random()
    if item.code == "GLU" and roll < 0.15:
        value, flag, critical = item.high * 3.6, "HH", "1"
    elif roll < 0.25:
        value, flag, critical = item.high * rng.uniform(1.1, 1.6), "H", "0"
    elif roll < 0.35:
        value, flag, critical = item.low * rng.uniform(0.6, 0.9), "L", "0"
    else:
        value, flag, critical = rng.uniform(item.low, item.high), "", "0"
    return f"{value:.{item.decimals}f}", flag, critical


def _ref(v: float) -> str:
    return f"{v:g}"


def _lab_report(rng: random.Random, n: int, p: Patient, panel: cat.Panel) -> tuple[dict[str, Any], ...]:
    t0 = dt.datetime.combine(DAY, dt.time(8, 0)) + dt.timedelta(minutes=17 * n)
    at = lambda minutes: (t0 + dt.timedelta(minutes=minutes)).strftime("%Y%m%d%H%M%S")  # noqa: E731
    requester = p.doctor
    head = {
        "REPORT_NO": f"L{DAY:%Y%m%d}{n + 1:04d}", "ORG_CODE": cat.ORG_CODE, "ORG_NAME": cat.ORG_NAME,
        "APPLY_NO": f"A{DAY:%y%m%d}{n + 1:04d}", "ORDER_NO": f"O{DAY:%y%m%d}{n + 101:04d}",
        "BARCODE": f"11{DAY:%y%m%d}{rng.randrange(10**4):04d}", "PATIENT_ID": p.patient_id, "PATIENT_NAME": p.name,
        "SEX": LIS_SEX[p.sex], "BIRTHDAY": f"{p.birth:%Y%m%d}", "ID_CARD": p.id_card, "CARD_NO": p.card_no, "PHONE": p.phone,
        "PATIENT_TYPE": p.visit_type, "VISIT_NO": p.visit_no, "VISIT_DATE": f"{p.visit_date:%Y%m%d}", "BED_NO": p.bed_no,
        "DIAGNOSIS": p.diagnosis[1], "APPLY_DEPT_CODE": requester.dept.code, "APPLY_DEPT_NAME": requester.dept.name,
        "APPLY_DOCTOR_CODE": requester.code, "APPLY_DOCTOR_NAME": requester.name, "APPLY_TIME": at(0),
        "SAMPLE_NO": str(n + 11), "SAMPLE_TYPE": panel.sample_type, "COLLECT_TIME": at(15), "RECEIVE_TIME": at(32),
        "TEST_DEPT_CODE": cat.LAB.code, "TEST_DEPT_NAME": cat.LAB.name, "TESTER_NAME": cat.LAB_TESTER.name,
        "TEST_TIME": at(60), "REPORT_DOCTOR_CODE": cat.LAB_REPORTER.code, "REPORT_DOCTOR_NAME": cat.LAB_REPORTER.name,
        "REPORT_TIME": at(88), "AUDIT_DOCTOR_CODE": cat.LAB_REVIEWER.code, "AUDIT_DOCTOR_NAME": cat.LAB_REVIEWER.name,
        "AUDIT_TIME": at(90), "REPORT_STATUS": "2", "GROUP_CODE": panel.code, "GROUP_NAME": panel.name,
        "CATEGORY": panel.category, "INSTRUMENT": panel.instrument,
    }
    rows = []
    for seq, item in enumerate(panel.items, start=1):
        result, flag, critical = _lab_value(rng, item)
        rows.append({**head, "ITEM_SEQ": seq, "ITEM_CODE": item.code, "ITEM_NAME": item.name, "RESULT": result,
                     "RESULT_TYPE": "N", "UNIT": item.unit, "REF_LOW": _ref(item.low), "REF_HIGH": _ref(item.high),
                     "REF_RANGE": f"{_ref(item.low)}-{_ref(item.high)}", "RESULT_FLAG": flag, "CRITICAL_FLAG": critical,
                     "RECOGNIZABLE": "1", "REPORT_PDF": _pdf_b64()})
    return tuple(rows)


def _pdf_b64() -> str:
    return base64.b64encode(PDF).decode("ascii")


def _exam_report(rng: random.Random, n: int, p: Patient, item: cat.ExamItem, seed: int) -> dict[str, Any]:
    t0 = dt.datetime.combine(DAY, dt.time(8, 30)) + dt.timedelta(minutes=23 * n)
    at = lambda minutes: (t0 + dt.timedelta(minutes=minutes)).strftime(FMT)  # noqa: E731
    abnormal = rng.random() < 0.4
    acc = f"{item.modality}{DAY:%y%m%d}{n + 1:04d}"
    reporter, reviewer = cat.RADIOLOGISTS[item.dept]
    technician = cat.TECHNICIANS[item.dept]
    inpatient = p.visit_type == "I"
    return {
        "REPORT_ID": f"R{DAY:%Y%m%d}{n + 1:05d}", "ACCESSION_NO": acc,
        "STUDY_UID": None if item.modality == "US" else f"{UID_ROOT}{DAY:%Y%m%d}.{seed}.{n + 1}",
        "ORG_CODE": cat.ORG_CODE, "ORG_NAME": cat.ORG_NAME, "APPLY_NO": f"{330000 + n * 37 + seed}",
        "ORDER_NO": f"O{DAY:%y%m%d}{n + 501:04d}", "PATIENT_ID": p.patient_id, "PATIENT_NAME": p.name,
        "SEX": WORD_SEX[p.sex], "BIRTH_DATE": f"{p.birth:%Y-%m-%d}", "ID_CARD": p.id_card, "PHONE": p.phone,
        "ADDRESS": p.address, "PATIENT_SOURCE": VISIT_WORDS[p.visit_type], "VISIT_NO": p.visit_no,
        "VISIT_DATE": f"{p.visit_date:%Y-%m-%d}", "OUTPATIENT_NO": None if inpatient else p.visit_no,
        "INPATIENT_NO": p.visit_no if inpatient else None, "WARD_NAME": p.ward[1] if p.ward else None, "BED_NO": p.bed_no,
        "MODALITY": item.modality, "EXAM_ITEM_CODE": item.code, "EXAM_ITEM_NAME": item.name,
        "BODY_PART_CODE": item.body_part_code, "BODY_PART": item.body_part, "EXAM_METHOD": item.method, "PRICE": item.price,
        "APPLY_DEPT_CODE": p.dept.code, "APPLY_DEPT_NAME": p.dept.name, "APPLY_DOCTOR_CODE": p.doctor.code,
        "APPLY_DOCTOR_NAME": p.doctor.name, "APPLY_TIME": at(0), "CLINICAL_DIAG": p.diagnosis[1],
        "BRIEF_HISTORY": p.diagnosis[2], "EXAM_PURPOSE": "健康体检" if p.visit_type == "P" else f"明确{p.diagnosis[1]}诊断",
        "REGISTER_TIME": at(20), "EXAM_TIME": at(30), "EXAM_DEPT_CODE": item.dept.code, "EXAM_DEPT_NAME": item.dept.name,
        "TECHNICIAN_CODE": technician.code, "TECHNICIAN_NAME": technician.name, "REPORT_DOCTOR_CODE": reporter.code,
        "REPORT_DOCTOR_NAME": reporter.name, "REPORT_TIME": at(75), "AUDIT_DOCTOR_CODE": reviewer.code,
        "AUDIT_DOCTOR_NAME": reviewer.name, "AUDIT_TIME": at(90),
        "FINDINGS": item.abnormal_findings if abnormal else item.findings,
        "CONCLUSION": item.abnormal_conclusion if abnormal else item.conclusion,
        "ADVICE": "建议结合临床，必要时复查。" if abnormal else None, "ABNORMAL_FLAG": "1" if abnormal else "0",
        "CRITICAL_FLAG": "0", "INFECTIOUS_FLAG": "0", "REPORT_STATUS": "已审核",
        "IMAGE_URL": f"http://pacs.example-hospital.cn/viewer?acc={acc}", "REPORT_PDF": _pdf_b64(), "UPDATE_TIME": at(90),
    }


def _his_identity(p: Patient) -> dict[str, Any]:
    return {"ORG_CODE": cat.ORG_CODE, "ORG_NAME": cat.ORG_NAME, "PATIENT_ID": p.patient_id, "PATIENT_NAME": p.name,
            "SEX": WORD_SEX[p.sex], "BIRTHDAY": f"{p.birth:%Y-%m-%d}", "ID_CARD": p.id_card, "CARD_TYPE": "JZK",
            "CARD_NO": p.card_no, "PHONE": p.phone}


def _recognition_query(rng: random.Random, n: int, p: Patient) -> dict[str, Any]:
    at = dt.datetime.combine(DAY, dt.time(7, 40)) + dt.timedelta(minutes=7 * n)
    body = {**_his_identity(p), "VISIT_NO": p.visit_no, "VISIT_TYPE": VISIT_WORDS[p.visit_type],
            "VISIT_DATE": f"{p.visit_date:%Y-%m-%d}", "DEPT_CODE": p.dept.code, "DEPT_NAME": p.dept.name,
            "WARD_CODE": p.ward[0] if p.ward else None, "WARD_NAME": p.ward[1] if p.ward else None, "BED_NO": p.bed_no,
            "DOCTOR_CODE": p.doctor.code, "DOCTOR_NAME": p.doctor.name, "CHIEF_COMPLAINT": p.diagnosis[2],
            "DIAG_CODE": p.diagnosis[0], "DIAG_NAME": p.diagnosis[1],
            "CLIENT_MAC": f"74-40-BB-{n:02X}-C9-{rng.randrange(256):02X}", "CLIENT_IP": f"10.20.3.{41 + n}",
            "QUERY_TIME": at.strftime(FMT)}
    return {k: v for k, v in body.items() if v is not None}  # the HIS leaves out what it does not know


ADVICE = {
    cat.RESPIRATORY: "继续口服药物，多饮水，避免受凉，一周后复诊",
    cat.CARDIOLOGY: "继续原方案，低盐低脂饮食，每日监测血压",
}


def _online_visit(rng: random.Random, n: int, p: Patient) -> dict[str, Any]:
    t0 = dt.datetime.combine(DAY, dt.time(19, 0)) + dt.timedelta(minutes=25 * n)
    at = lambda minutes: (t0 + dt.timedelta(minutes=minutes)).strftime(FMT)  # noqa: E731
    code, diag, complaint = p.diagnosis
    advice = ADVICE.get(p.dept, "遵医嘱用药，不适随诊")
    flow = f"IH{DAY:%Y%m%d}{n + 1:04d}"
    last = DAY - dt.timedelta(days=rng.randrange(14, 60))
    return {
        "FLOW_NO": flow, "ORDER_ID": f"OD{DAY:%Y%m%d}{n + 1:04d}", "ORDER_TIME": at(0), "ORDER_STATUS": "已完成",
        "CHANNEL": rng.choice(("APP", "WX", "MINI")), "PAY_TYPE": rng.choice(("WXPAY", "ALIPAY", "YB")),
        "FEE": rng.choice((15.0, 20.0, 30.0)), **_his_identity(p), "DEPT_CODE": p.dept.code, "DEPT_NAME": p.dept.name,
        "DOCTOR_CODE": p.doctor.code, "DOCTOR_NAME": p.doctor.name, "START_TIME": at(3), "END_TIME": at(18),
        "DESCRIPTION": f"既往诊断{diag}，{complaint}，规律服药，申请复诊续方", "CHIEF_COMPLAINT": f"{diag}复诊",
        "PRESENT_HISTORY": f"{complaint}，经治疗后好转", "DIAG_CODE": code, "DIAG_NAME": diag, "SUGGESTION": advice,
        "RECIPE_NO": f"RX{DAY:%Y%m%d}{n + 1:04d}", "EMR_NO": f"EMR{DAY:%Y%m%d}{n + 1:04d}",
        "LAST_EMR_NO": f"EMR{last:%Y%m%d}{rng.randrange(1, 999):04d}", "LAST_VISIT_DATE": f"{last:%Y-%m-%d}",
        "LAST_ORG_CODE": cat.ORG_CODE, "LAST_ORG_NAME": cat.ORG_NAME, "LAST_DEPT_CODE": p.dept.code,
        "LAST_DEPT_NAME": p.dept.name, "LAST_DIAG_CODE": code, "LAST_DIAG_NAME": diag,
        "MESSAGES": [
            {"MSG_TIME": at(4), "SENDER": "P", "CONTENT": f"医生您好，我之前诊断为{diag}，想复诊续方。"},
            {"MSG_TIME": at(6), "SENDER": "D", "CONTENT": "最近症状怎么样？有没有加重或新的不适？"},
            {"MSG_TIME": at(9), "SENDER": "P", "CONTENT": "比上次好多了，这是上周的检查单。", "ATTACH_IDS": f"ATT{flow[2:]}01"},
            {"MSG_TIME": at(15), "SENDER": "D", "CONTENT": f"已看过，恢复可。{advice}。"},
        ],
    }


def build_hospital(dir: Path, *, patients: int = 8, seed: int = 1) -> HospitalData:
    """Write the sample hospital under `dir` (hospital.db, dicom/) and return its records.

    With the defaults: 8 patients, 6 lab reports (3-7 result lines each), 5 exam reports (3 with
    DICOM studies: 6 instances), 8 recognition queries and 3 online visits."""
    if patients < 1:
        raise ValueError("a hospital needs at least one patient")
    root = Path(dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pats = _patients(rng, patients)
    n_lab, n_exam = max(1, round(patients * 0.75)), max(1, round(patients * 0.625))
    labs = tuple(_lab_report(rng, i, pats[i % patients], cat.PANELS[(i + seed) % len(cat.PANELS)]) for i in range(n_lab))
    exams = tuple(_exam_report(rng, j, pats[(j * 3 + 1) % patients], cat.EXAM_ITEMS[j % len(cat.EXAM_ITEMS)], seed)
                  for j in range(n_exam))
    queries = tuple(_recognition_query(rng, i, p) for i, p in enumerate(pats))
    outpatients = [p for p in pats if p.visit_type in ("O", "E")][:3]
    online = tuple(_online_visit(rng, k, p) for k, p in enumerate(outpatients))
    database = root / "hospital.db"
    write_database(database, labs, exams)
    files: list[Path] = []
    by_id = {p.patient_id: p for p in pats}
    for exam in exams:
        if exam["STUDY_UID"]:
            files += write_study(root / "dicom", exam, age=by_id[exam["PATIENT_ID"]].age, institution=cat.ORG_NAME)
    return HospitalData(root=root, database=database, patients=tuple(pats), lab_reports=labs, exam_reports=exams,
                        recognition_queries=queries, online_visits=online, dicom_files=tuple(files),
                        dicom_instances=tuple(instance_message(f) for f in files))

"""The demo hospital: every record it produces translates and validates through its mapping chain to
every platform interface the demo bridge routes it to, and the data is what it claims to be
(deterministic, valid resident ID numbers, codes every code map knows, views the poller can read)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from adapters.base import InboundMessage, Reply
from adapters.dbview import ViewPoller
from adapters.rows import row_to_message
from adapters.sqlite_db import SqliteDatabase
from engine.demo import HospitalData, build_hospital
from engine.spec import load_specs
from engine.spec.checks import id_card, id_card_check_digit
from engine.spec.loader import SpecSet
from engine.translate import MappingSet, load_mappings

REPO = Path(__file__).resolve().parents[2]

# (records attribute of HospitalData, source interface, target interface): the demo bridge's routes
ROUTES = [
    ("lab_reports", "hospital_lis/lab_report", "xinjiang_mr/ArchiveAutoReport.lab"),
    ("pe_lab_rows", "hospital_lis/lab_report", "pe_system/lis_pubReport"),
    ("exam_reports", "hospital_pacs/exam_report", "jilin_imaging/savePatientExam"),
    ("exam_reports", "hospital_pacs/exam_report", "xinjiang_mr/ArchiveAutoReport.exam"),
    ("pe_exam_reports", "hospital_pacs/exam_report", "pe_system/pacs_pubReport"),
    ("dicom_instances", "hospital_pacs/dicom_instance", "jilin_imaging/uploadDicom"),
    ("recognition_queries", "hospital_his/recognition_query", "city_lab_mr/HR01"),
    ("online_visits", "hospital_his/online_visit", "wedoctor_supervision/A2000"),
    ("online_visits", "hospital_his/online_visit", "wedoctor_supervision/A2001"),
]


@pytest.fixture(scope="module")
def specs() -> SpecSet:
    return load_specs(REPO / "specs")


@pytest.fixture(scope="module")
def maps(specs: SpecSet) -> MappingSet:
    return load_mappings(REPO / "specs" / "mappings", specs)


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> HospitalData:
    return build_hospital(tmp_path_factory.mktemp("hospital"))


def _records(h: HospitalData, attr: str) -> list[Any]:
    """Records as their source hands them on. pe_system takes one result line per message, so its
    LIS source polls line by line (group_by the whole key): each record is a one-row list."""
    if attr == "pe_lab_rows":
        return [[row] for row in h.pe_lab_rows]
    return [list(r) if isinstance(r, tuple) else r for r in getattr(h, attr)]


@pytest.mark.parametrize(("attr", "source", "target"), ROUTES, ids=[f"{s}->{t}" for _, s, t in ROUTES])
def test_every_record_reaches_its_target_valid(specs: SpecSet, maps: MappingSet, hospital: HospitalData,
                                               attr: str, source: str, target: str) -> None:
    records = _records(hospital, attr)
    assert records, f"the sample hospital produces no {attr}"
    chain = maps.route(source, target)
    iface = specs.interface(target)
    for record in records:
        src = specs.interface(source).validate_request(record)
        assert src.valid, (source, src.to_dict()["errors"])
        message: Any = record
        for step, message in chain.trace(record):
            res = step.validate(message)
            assert res.valid, (step.id, res.to_dict()["errors"])
        last = chain.steps[-1]
        final = last.validate(message) if last.supplied else iface.validate_request(message)
        assert final.valid, (target, final.to_dict()["errors"])


def test_expected_deliveries_cover_all_five_platforms(hospital: HospitalData) -> None:
    expected = hospital.expected_deliveries()
    assert {k.partition("/")[0] for k, n in expected.items() if n > 0} == {
        "city_lab_mr", "xinjiang_mr", "pe_system", "wedoctor_supervision", "jilin_imaging"}
    assert expected["pe_system/lis_pubReport"] == sum(len(r) for r in hospital.lab_reports if r[0]["PATIENT_TYPE"] == "P")


def test_sizes_match_the_brief(hospital: HospitalData) -> None:
    assert len(hospital.patients) == 8
    assert len(hospital.lab_reports) == 6 and all(3 <= len(r) <= 8 for r in hospital.lab_reports)
    assert len(hospital.exam_reports) == 5
    assert len(hospital.dicom_files) == len(hospital.dicom_instances) > 0
    assert hospital.recognition_queries and hospital.online_visits


def test_resident_id_numbers_are_valid(hospital: HospitalData) -> None:
    for p in hospital.patients:
        assert id_card(p.id_card) is None
        assert id_card_check_digit(p.id_card[:17]) == p.id_card[17]
        assert p.id_card[6:14] == f"{p.birth:%Y%m%d}"
        assert int(p.id_card[16]) % 2 == (1 if p.sex == "M" else 0)  # GB 11643: odd for men
    cards = [r["ID_CARD"] for r in hospital.lab_rows] + [r["ID_CARD"] for r in hospital.exam_reports]
    cards += [b["ID_CARD"] for b in hospital.recognition_queries + hospital.online_visits]
    assert all(id_card(c) is None for c in cards)


def test_codes_are_known_to_every_code_map(maps: MappingSet, hospital: HospitalData) -> None:
    """Maps with `unmapped: omit` would not fail on a stranger: check membership directly."""
    lis_items = maps.code_maps["lis_item_std"][0].map
    exam_items = maps.code_maps["pacs_exam_item_std"][0].map
    depts = maps.code_maps["hospital_dept_std"][0].map
    assert {r["ITEM_CODE"] for r in hospital.lab_rows} <= lis_items.keys()
    assert {r["EXAM_ITEM_CODE"] for r in hospital.exam_reports} <= exam_items.keys()
    used = {r[c] for r in hospital.lab_rows for c in ("APPLY_DEPT_CODE", "TEST_DEPT_CODE")}
    used |= {r[c] for r in hospital.exam_reports for c in ("APPLY_DEPT_CODE", "EXAM_DEPT_CODE")}
    used |= {b["DEPT_CODE"] for b in hospital.recognition_queries + hospital.online_visits}
    assert used <= depts.keys()


def test_dicom_files_belong_to_exam_reports(hospital: HospitalData) -> None:
    exams = {e["ACCESSION_NO"]: e for e in hospital.exam_reports}
    for path, msg in zip(hospital.dicom_files, hospital.dicom_instances, strict=True):
        ds = dcmread(path)
        exam = exams[ds.AccessionNumber]
        assert (ds.PatientID, ds.StudyInstanceUID, str(ds.PatientName)) == (exam["PATIENT_ID"], exam["STUDY_UID"], exam["PATIENT_NAME"])
        assert msg["AccessionNumber"] == exam["ACCESSION_NO"] and msg["file"]["path"] == str(path)
        assert msg["file"]["size"] == path.stat().st_size
        assert all(len(msg[k]) <= 60 for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))  # jilin bound
    with_images = {e["ACCESSION_NO"] for e in hospital.exam_reports if e["STUDY_UID"]}
    assert with_images == {m["AccessionNumber"] for m in hospital.dicom_instances}


def test_same_seed_same_hospital(tmp_path: Path, hospital: HospitalData) -> None:
    again = build_hospital(tmp_path / "again")
    assert again.lab_reports == hospital.lab_reports and again.exam_reports == hospital.exam_reports
    assert again.recognition_queries == hospital.recognition_queries and again.online_visits == hospital.online_visits
    assert [p.read_bytes() for p in again.dicom_files] == [p.read_bytes() for p in hospital.dicom_files]
    other = build_hospital(tmp_path / "other", seed=2)
    assert other.patients != hospital.patients


def test_his_bodies_are_plain_json(hospital: HospitalData) -> None:
    for iface, path, body in hospital.his_requests():
        assert path.startswith("/his/") and iface.startswith("hospital_his/")
        assert json.loads(json.dumps(body, ensure_ascii=False)) == body


def test_views_hold_the_rows(specs: SpecSet, hospital: HospitalData) -> None:
    """Read back through SQLite and the dbview row codec: the views deliver exactly the records."""
    con = sqlite3.connect(hospital.database)
    con.row_factory = sqlite3.Row
    try:
        lis = specs.interface("hospital_lis/lab_report").request.node.children
        pacs = specs.interface("hospital_pacs/exam_report").request.node.children
        lab = [row_to_message(dict(r), lis) for r in con.execute(
            "SELECT * FROM V_LIS_REPORT_RESULT ORDER BY AUDIT_TIME, REPORT_NO, ITEM_SEQ")]
        exam = [row_to_message(dict(r), pacs) for r in con.execute("SELECT * FROM V_RIS_EXAM_REPORT ORDER BY UPDATE_TIME, REPORT_ID")]
    finally:
        con.close()
    assert lab == hospital.lab_rows
    assert exam == list(hospital.exam_reports)


@pytest.mark.parametrize("group_by", [["REPORT_NO"], ["REPORT_NO", "ITEM_SEQ"]], ids=["by-report", "by-line"])
async def test_poller_delivers_the_records(specs: SpecSet, hospital: HospitalData, tmp_path: Path, group_by: list[str]) -> None:
    """The demo's LIS sources: grouped by REPORT_NO each record is a whole report; grouped by the whole
    key (the pe_system route) each record is a one-row list."""
    got: list[Any] = []

    async def sink(msg: InboundMessage) -> Reply:
        got.append(msg.body)
        return Reply(b"{}")

    want = [list(r) for r in hospital.lab_reports] if len(group_by) == 1 else [[row] for row in hospital.lab_rows]
    db = await SqliteDatabase.open(hospital.database, readonly=True)
    try:
        poller = ViewPoller.for_interface(specs.interface("hospital_lis/lab_report"), db, tmp_path / "cursor.db", group_by=group_by)
        await poller.open()
        while len(got) < len(want) and await poller.poll_once(sink):
            pass
        await poller.stop()
    finally:
        await db.close()
    assert got == want


def test_a_bare_row_maps_like_a_one_row_report(maps: MappingSet, hospital: HospitalData) -> None:
    """An ungrouped poller hands out dict rows; the chain gives the same message for both shapes."""
    chain = maps.route("hospital_lis/lab_report", "pe_system/lis_pubReport")
    for row in hospital.pe_lab_rows:
        assert chain.translate(row) == chain.translate([row])


def test_a_whole_report_is_refused_by_lis_pub_report(maps: MappingSet, hospital: HospitalData) -> None:
    """pe_system takes one line per message: a multi-line report must fail loudly, not lose lines."""
    chain = maps.route("hospital_lis/lab_report", "pe_system/lis_pubReport")
    report = next(list(r) for r in hospital.lab_reports if len(r) > 1)
    res = chain.steps[-1].validate(chain.translate(report))
    assert not res.valid and "ExamItemID" in {e["path"] for e in res.to_dict()["errors"]}


def test_times_are_in_order_for_the_watermarks(hospital: HospitalData) -> None:
    audits = [r[0]["AUDIT_TIME"] for r in hospital.lab_reports]
    updates = [e["UPDATE_TIME"] for e in hospital.exam_reports]
    assert audits == sorted(audits) and len(set(audits)) == len(audits)
    assert updates == sorted(updates) and len(set(updates)) == len(updates)
    assert all(dt.datetime.strptime(u, "%Y-%m-%d %H:%M:%S") for u in updates)

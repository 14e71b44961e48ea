"""Canonical hub models (specs/canonical/): they load, a realistic synthetic record of each validates,
deliberate mistakes fail with the right rule at the right path, and the coverage table that the mapping
work starts from points at fields that exist on both sides.

Synthetic records live in tests/data/canonical/<model>.json; their resident ID numbers carry correct
GB 11643 check digits and agree with the record's birth date and sex.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.spec import load_specs

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
DATA = ROOT / "tests" / "data" / "canonical"
COVERAGE = ROOT / "tests" / "fields" / "canonical_coverage.tsv"
FIELD_LISTS = ROOT / "tests" / "fields"

MODELS = sorted(p.stem for p in (SPECS / "canonical").glob("*.yaml"))
EXPECTED_MODELS = {
    "patient",
    "visit",
    "lab_report",
    "exam_report",
    "image_study",
    "recognition_query",
    "recognition_result",
    "pe_order",
    "report_count",
    "access_record",
    "organization",
    "department",
    "practitioner",
    "online_visit",
    "consultation",
    "attachment",
}
PLATFORMS = {"city_lab_mr", "xinjiang_mr", "pe_system", "wedoctor_supervision", "jilin_imaging"}
DELETE = object()
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def specs():
    # Not strict: platform specs are written in parallel; this module asserts on its own files below.
    return load_specs(SPECS, strict=False)


def record(model: str) -> dict[str, Any]:
    return json.loads((DATA / f"{model}.json").read_text(encoding="utf-8"))


_SEG = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [name if name else int(idx) for name, idx in _SEG.findall(path)]


def mutate(obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for path, value in changes.items():
        *parents, last = _steps(path)
        cur: Any = out
        for step in parents:
            cur = cur[step]
        if value is DELETE:
            del cur[last]
        else:
            cur[last] = value
    return out


# ---------------------------------------------------------------------------------------------- loading


def test_canonical_and_common_files_load_without_findings(specs):
    mine = [str(f) for f in specs.findings if f.file.startswith(("specs/canonical/", "specs/common/"))]
    assert mine == []


def test_every_expected_model_is_a_model(specs):
    assert set(specs.models) >= EXPECTED_MODELS
    for mid in EXPECTED_MODELS:
        group, _ = specs.model_specs[mid]
        assert group.kind == "model", mid
        assert group.title and CJK.search(group.title), mid


def test_every_model_has_a_synthetic_record_and_back():
    assert sorted(p.stem for p in DATA.glob("*.json")) == MODELS


# ------------------------------------------------------------------------------------- valid records


@pytest.mark.parametrize("model", MODELS)
def test_synthetic_record_validates_cleanly(specs, model):
    res = specs.model(model).validate(record(model))
    assert [(i.path, i.rule) for i in res.errors] == []
    assert [(i.path, i.rule) for i in res.warnings] == []


def _id_check_digit(first17: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # ISO 7064 MOD 11-2, derived rather than copied
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def _walk(obj: Any):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def test_synthetic_id_numbers_are_real_gb11643_numbers():
    seen = 0
    for path in sorted(DATA.glob("*.json")):
        for node in _walk(json.loads(path.read_text(encoding="utf-8"))):
            for key, value in node.items():
                if not key.endswith("id_card_no"):
                    continue
                seen += 1
                assert re.fullmatch(r"\d{17}[\dX]", value), (path.name, value)
                assert value[17] == _id_check_digit(value[:17]), (path.name, value)
            if "id_card_no" in node and "birth_date" in node:  # a patient: number agrees with the record
                assert node["id_card_no"][6:14] == node["birth_date"].replace("-", ""), path.name
                parity = "1" if int(node["id_card_no"][16]) % 2 else "2"
                assert node["sex_code"] == parity, path.name
    assert seen >= 10


VALID_VARIANTS = [
    ("exam_report", {"findings": "", "conclusion": ""}),  # jilin: 无内容时可传空值
    ("exam_report", {"study_uid": DELETE}),  # non-DICOM exams (pathology) fall back to accession_no
    ("patient", {"id_card_no": DELETE, "other_id_type_code": "03", "other_id_no": "E12345678"}),
    ("patient", {"id_card_no": DELETE}),  # no identity document at all: accepted by the hub
    ("recognition_query", {"query_type": "outcome", "business_id": "B20240530001", "patient": DELETE, "ordered_items": DELETE}),
    ("recognition_query", {"query_type": "history", "ordered_items": DELETE}),
    ("recognition_result", {"source_report_no": DELETE, "registry_id": "101252655601"}),
    ("recognition_result", {"accepted": True, "reason_code": DELETE, "reason_text": DELETE}),
    ("recognition_result", {"accepted": DELETE, "reason_code": DELETE, "quoted": True}),
    ("attachment", {"content": DELETE, "file_path": "/data/attachments/ATT-DOC-0002.pdf"}),
    ("access_record", {"access_type": "view", "search_type": DELETE}),
    ("pe_order", {"items[0].kind": "exam", "items[0].barcode": DELETE}),  # only lab lines need a barcode
]


@pytest.mark.parametrize(("model", "changes"), VALID_VARIANTS)
def test_valid_variant(specs, model, changes):
    res = specs.model(model).validate(mutate(record(model), changes))
    assert [(i.path, i.rule) for i in res.errors] == []


# ----------------------------------------------------------------------------------- invalid records

INVALID = [
    # model, changes, expected path, expected rule
    ("patient", {"name": DELETE}, "name", "required"),
    ("patient", {"name": ""}, "name", "empty"),
    ("patient", {"name": "名" * 129}, "name", "length"),
    ("patient", {"sex_code": "3"}, "sex_code", "code"),
    ("patient", {"birth_date": "19920611"}, "birth_date", "format"),
    ("patient", {"id_card_no": "650102199206110047"}, "id_card_no", "check:id_card"),
    ("patient", {"other_id_type_code": "03"}, "other_id_no", "required_if"),
    ("patient", {"other_id_no": "E12345678"}, "other_id_type_code", "required_if"),
    ("patient", {"other_id_type_code": "01", "other_id_no": "650102199206110046"}, "other_id_type_code", "pattern"),
    ("patient", {"nickname": "甲"}, "nickname", "unknown"),
    ("visit", {"visit_type": "7"}, "visit_type", "code"),
    ("visit", {"age_value": "31"}, "age_value", "type"),
    ("visit", {"age_value": -1}, "age_value", "range"),
    ("visit", {"age_value": 31.25}, "age_value", "decimal"),
    ("visit", {"age_unit": DELETE}, "age_unit", "required_if"),
    ("visit", {"age_unit": "y"}, "age_unit", "code"),
    ("visit", {"diagnoses[1].name": DELETE}, "diagnoses[1].name", "required"),
    ("visit", {"start_time": "2024/03/11 08:05"}, "start_time", "format"),
    ("lab_report", {"items": []}, "items", "cardinality"),
    ("lab_report", {"items[0].seq": "1"}, "items[0].seq", "type"),
    ("lab_report", {"items[2].interpretation": "M"}, "items[2].interpretation", "code"),  # pe_system's M maps to N
    ("lab_report", {"items[1].value": DELETE}, "items[1].value", "required"),
    ("lab_report", {"items[0].recognizable": "1"}, "items[0].recognizable", "type"),
    ("lab_report", {"patient.id_card_no": "650102199206110047"}, "patient.id_card_no", "check:id_card"),
    ("lab_report", {"visit.visit_no": DELETE}, "visit.visit_no", "required"),
    ("lab_report", {"reviewer.name": "名" * 129}, "reviewer.name", "length"),
    ("lab_report", {"review_time": "2024-03-11T09:28:59"}, "review_time", "format"),
    ("lab_report", {"status": "final"}, "status", "code"),
    ("lab_report", {"pdf": "not base64!"}, "pdf", "format"),
    ("lab_report", {"specimen.tube_color": "紫" * 33}, "specimen.tube_color", "length"),
    ("exam_report", {"findings": DELETE}, "findings", "required"),  # may be empty, never absent
    ("exam_report", {"reviewer": DELETE}, "reviewer", "required"),
    ("exam_report", {"study_uid": "1.2.abc"}, "study_uid", "pattern"),
    ("exam_report", {"items[0].price": 285.005}, "items[0].price", "decimal"),
    ("exam_report", {"critical_level": "3"}, "critical_level", "code"),
    ("exam_report", {"visit.age_unit": DELETE}, "visit.age_unit", "required_if"),
    ("image_study", {"series[0].instances": []}, "series[0].instances", "cardinality"),
    ("image_study", {"series[0].instances[1].file_path": DELETE}, "series[0].instances[1].file_path", "required"),
    ("image_study", {"series[0].series_uid": "1." + "2" * 64}, "series[0].series_uid", "length"),
    ("recognition_query", {"ordered_items": DELETE}, "ordered_items", "required_if"),
    ("recognition_query", {"query_type": "outcome", "patient": DELETE}, "business_id", "required_if"),
    ("recognition_query", {"query_type": "history", "patient": DELETE}, "patient", "required_if"),
    ("recognition_query", {"ordered_items[0].kind": "check"}, "ordered_items[0].kind", "code"),
    ("recognition_query", {"candidates[0].results[0].code": DELETE}, "candidates[0].results[0].code", "required"),
    ("recognition_result", {"accepted": DELETE, "quoted": DELETE, "reason_code": DELETE}, "$", "one_of"),
    ("recognition_result", {"reason_code": DELETE}, "reason_code", "required_if"),
    ("recognition_result", {"reason_code": "0"}, "reason_code", "code"),
    ("recognition_result", {"source_report_no": DELETE}, "source_report_no", "required_if"),
    ("recognition_result", {"decision_time": DELETE}, "decision_time", "required"),
    ("pe_order", {"items[0].barcode": DELETE}, "items[0].barcode", "required_if"),
    ("pe_order", {"items[0].discount_rate": 1.5}, "items[0].discount_rate", "range"),
    ("pe_order", {"charge_status": "11"}, "charge_status", "code"),  # pe_system's code, not the hub's
    ("report_count", {"lab_count": -1}, "lab_count", "range"),
    ("report_count", {"dept": DELETE}, "dept", "required"),
    ("access_record", {"search_type": DELETE}, "search_type", "required_if"),
    ("organization", {"area_code": "2201"}, "area_code", "pattern"),
    ("organization", {"legal_id_card_no": "220102196209154025"}, "legal_id_card_no", "check:id_card"),
    ("practitioner", {"rank_code": "6"}, "rank_code", "code"),
    ("online_visit", {"dialogue[0].role": "3"}, "dialogue[0].role", "code"),
    ("online_visit", {"dialogue[1].attachment_ids": ["x" * 129]}, "dialogue[1].attachment_ids[0]", "length"),
    ("attachment", {"content": DELETE}, "$", "one_of"),
    ("attachment", {"file_type": "p.d.f"}, "file_type", "pattern"),
]


@pytest.mark.parametrize(("model", "changes", "path", "rule"), INVALID, ids=[f"{m}:{p}:{r}" for m, _, p, r in INVALID])
def test_invalid_variant_fails_at_the_right_place(specs, model, changes, path, rule):
    res = specs.model(model).validate(mutate(record(model), changes))
    assert not res.valid
    assert (path, rule) in [(i.path, i.rule) for i in res.errors]


def test_every_error_is_reported_not_just_the_first(specs):
    bad = mutate(record("lab_report"), {"patient.sex_code": "3", "items[0].seq": "1", "review_time": "x"})
    got = {(i.path, i.rule) for i in specs.model("lab_report").validate(bad).errors}
    assert {("patient.sex_code", "code"), ("items[0].seq", "type"), ("review_time", "format")} <= got


WARN_ONLY = [
    # codes_strict false: DICOM keeps adding modalities; xinjiang's own examples put local codes in std fields
    ("exam_report", {"modality": "XX"}, "modality"),
    ("visit", {"dept.std_code": "1411"}, "dept.std_code"),
    ("department", {"std_code": "ZZZ"}, "std_code"),
]


@pytest.mark.parametrize(("model", "changes", "path"), WARN_ONLY)
def test_lenient_codes_warn_without_invalidating(specs, model, changes, path):
    res = specs.model(model).validate(mutate(record(model), changes))
    assert res.valid
    assert (path, "code") in [(i.path, i.rule) for i in res.warnings]


# ------------------------------------------------------------------------------------ spec hygiene


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _fields_of(spec_fields: dict[str, Any], where: str):
    for name, f in (spec_fields or {}).items():
        yield f"{where}.{name}", f
        if f.get("fields"):
            yield from _fields_of(f["fields"], f"{where}.{name}")


def test_every_canonical_field_has_a_chinese_title():
    groups = [SPECS / "common/groups/dept_ref.yaml", SPECS / "common/groups/doctor_ref.yaml"]
    files = [*(SPECS / "canonical").glob("*.yaml"), *groups]
    missing = [where for p in files for where, f in _fields_of(_yaml(p)["fields"], p.stem) if not CJK.search(f.get("title") or "")]
    assert missing == []


# Tables that follow a national standard carry exactly that standard's values.
STANDARD_TABLES = {
    "sex": {"0", "1", "2", "9"},
    "marital_status": {"10", "20", "21", "22", "23", "30", "40", "90"},
    "id_document_type": {"01", "02", "03", "04", "05", "06", "07", "99"},
    "ethnicity": {f"{i:02d}" for i in range(1, 57)} | {"97", "98"},
    "non_recognition_reason": {str(i) for i in range(1, 10)},
}


@pytest.mark.parametrize("table", sorted(STANDARD_TABLES))
def test_standard_code_tables_are_complete(table):
    doc = _yaml(SPECS / "common" / "codes" / f"{table}.yaml")
    assert set(doc["values"]) == STANDARD_TABLES[table]
    assert doc.get("standard") or doc.get("source")


def test_std_dept_table_is_xinjiangs_full_table():
    values = _yaml(SPECS / "common/codes/clinical_department.yaml")["values"]
    assert len(values) == 174 and {"A01", "A04.01.01", "A32.05", "A50.16", "A69"} <= set(values)


# ------------------------------------------------------------------------------------ coverage table


def _lookup(name: str) -> dict[str, Any]:
    for d in (SPECS / "canonical", SPECS / "common" / "groups"):
        p = d / f"{name}.yaml"
        if p.exists():
            return _yaml(p)["fields"]
    raise KeyError(name)


def resolves(model: str, path: str) -> bool:
    fields = _lookup(model)
    for seg in path.split("."):
        name = seg.removesuffix("[]")
        f = fields.get(name) if fields is not None else None
        if f is None:
            return False
        fields = f.get("fields") or (_lookup(f["use"]) if f.get("use") else None)
    return True


def _coverage() -> list[list[str]]:
    with COVERAGE.open(encoding="utf-8") as fh:
        return [row for row in csv.reader(fh, delimiter="\t")]


def test_coverage_rows_point_at_existing_canonical_fields(specs):
    rows = _coverage()
    assert rows and all(len(r) == 4 for r in rows)
    assert {r[0] for r in rows} == PLATFORMS
    bad = []
    for platform, iface, pfield, target in rows:
        if target == "-":  # fed by a constant or the envelope, not by the hub
            continue
        model, _, path = target.partition(".")
        if model not in specs.models or not resolves(model, path):
            bad.append((platform, iface, pfield, target))
    assert bad == []


def test_coverage_interfaces_exist_where_platform_specs_are_loaded(specs):
    missing = sorted({(p, i) for p, i, _, _ in _coverage() if p in specs.platforms and i not in specs.platforms[p].interfaces})
    assert missing == []


def _document_fields(platform: str) -> dict[str, set[str]] | None:
    path = FIELD_LISTS / f"{platform}.tsv"
    if not path.exists():
        return None
    out: dict[str, set[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) == 3 and row[1] == "request":
                out.setdefault(row[0], set()).add(row[2])
    return out


def _leaves(paths: set[str]) -> set[str]:
    return {p for p in paths if not any(q.startswith((p + ".", p + "[]")) for q in paths)}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_coverage_matches_the_platform_field_list(platform):
    """Every covered platform field is a document field, and every document field of a covered
    interface's payload is covered (mapped to the hub, or `-` when a constant feeds it)."""
    doc = _document_fields(platform)
    if doc is None:
        pytest.skip(f"tests/fields/{platform}.tsv not written yet")
    covered: dict[str, set[str]] = {}
    for p, iface, pfield, _ in _coverage():
        if p == platform:
            covered.setdefault(iface, set()).add(pfield)
    for iface, fields in covered.items():
        assert fields <= doc.get(iface, set()), (iface, sorted(fields - doc.get(iface, set())))
        roots = {f.split(".")[0].split("[")[0] for f in fields}
        payload = {f for f in _leaves(doc.get(iface, set())) if f.split(".")[0].split("[")[0] in roots}
        assert payload <= fields, (iface, sorted(payload - fields))

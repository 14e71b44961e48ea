"""jilin_imaging (document 004): the document's examples validate, each rule kind fails at the right path.

Bases are the cleaned document examples stored in the interface YAML (first request example), so the
spec and these tests agree on what "the document's example" is; each mutation breaks one thing.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine.spec import load_specs

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = "jilin_imaging"
DELETE = object()

INTERFACES = [
    "getToken",
    "saveReminderCallRecord",
    "projectContrast",
    "savePatientExam",
    "uploadDicom",
    "saveExamPdf",
    "getdigitalImageUrl",
    "queryFormerlyExam",
    "queryExamPdfData",
    "saveRecognExamRecord",
]


@pytest.fixture(scope="module")
def specs() -> Any:
    return load_specs(ROOT / "specs", strict=False)


def iface(specs: Any, name: str) -> Any:
    return specs.interface(f"{PLATFORM}/{name}")


def base(specs: Any, name: str, part: str = "request") -> Any:
    ex = next(e for e in iface(specs, name).spec.examples if e.part == part and e.valid)
    return copy.deepcopy(ex.body)


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def mutate(msg: Any, path: str, value: Any) -> Any:
    """Set (or delete, with DELETE) the value at `a.b[2].c`, creating nothing."""
    steps = [int(i) if i else k for k, i in _STEP.findall(path)]
    cur = msg
    for s in steps[:-1]:
        cur = cur[s]
    if value is DELETE:
        del cur[steps[-1]]
    else:
        cur[steps[-1]] = value
    return msg


def findings(res: Any) -> set[tuple[str, str]]:
    return {(e.path, e.rule) for e in res.errors}


# -- the spec tree itself ----------------------------------------------------------------------------


def test_platform_loads_without_findings(specs: Any) -> None:
    mine = [f for f in specs.findings if f"platforms/{PLATFORM}/" in str(f.file).replace("\\", "/")]
    assert [str(f) for f in mine if f.severity == "error"] == []


def test_all_ten_interfaces(specs: Any) -> None:
    assert sorted(specs.platforms[PLATFORM].interfaces) == sorted(INTERFACES)


@pytest.mark.parametrize("name", INTERFACES)
def test_document_examples_validate(specs: Any, name: str) -> None:
    ci = iface(specs, name)
    for ex in ci.spec.examples or []:
        if not ex.valid:
            continue
        validate = ci.validate_request if ex.part == "request" else ci.validate_response
        res = validate(ex.body)
        assert res.valid, (ex.name, [(e.path, e.rule, e.message) for e in res.errors])


def test_auth_is_data(specs: Any) -> None:
    auth = specs.platforms[PLATFORM].platform.auth
    assert (auth.kind, auth.interface, auth.token_path) == ("token", "getToken", "datas.token")
    assert (auth.lifetime_s, auth.daily_cap) == (7200, 30)
    assert (auth.lockout.failures, auth.lockout.minutes) == (6, 10)
    assert (auth.carry.in_, auth.carry.name) == ("header", "X-Token")
    crypto = specs.platforms[PLATFORM].platform.crypto
    assert crypto is not None and crypto.fields is not None and crypto.fields.fields == ["idCardNo"]


def test_error_actions(specs: Any) -> None:
    plat = specs.platforms[PLATFORM].platform
    actions = {code: e.action for code, e in plat.errors.items()}
    assert actions == {
        "200": "ok",
        "400": "fatal",
        "403": "reauth",
        "404": "fatal",
        "409": "fatal",
        "503": "retry",
        "504": "fatal",
        "11001": "fatal",
        "11003": "wait",
        "11004": "wait",
        "202": "fatal",
        "412": "fatal",
    }
    assert plat.success.field == "code" and plat.success.in_ == ["200"]
    # token interface: a 403 there is bad credentials, not an expired token
    assert iface(specs, "getToken").spec.errors["403"].action == "fatal"
    # queries: 404 is an empty result
    for name in ("queryFormerlyExam", "queryExamPdfData"):
        assert iface(specs, name).spec.errors["404"].action == "empty"


def test_natural_keys(specs: Any) -> None:
    keys = {n: iface(specs, n).spec.key for n in INTERFACES}
    assert keys["savePatientExam"] == ["hospitalCode", "accessNumber"]
    assert keys["saveExamPdf"] == ["hospitalCode", "accessNumber"]
    assert keys["uploadDicom"] == ["hospitalCode", "studyUid", "seriesUid", "instanceUid"]
    assert keys["projectContrast"] == ["hospitalCode", "projects[].projectItemCode"]
    assert keys["saveReminderCallRecord"] and keys["saveRecognExamRecord"]


def test_code_table_counts_match_document(specs: Any) -> None:
    codes = specs.platforms[PLATFORM].codes
    rows = (ROOT / "tests/fields/jilin_imaging.codes.tsv").read_text(encoding="utf-8").split("\n")
    want = {t: int(n) for t, n in (r.split("\t") for r in rows if r.strip())}
    assert {cid: len(t.values) for cid, (t, _) in codes.items()} == want


# -- one mutation per rule kind -------------------------------------------------------------------------

PDE = "savePatientExam"
MUTATIONS = [
    # (interface, path, bad value, expected path, expected rule)
    (PDE, "patientName", DELETE, "patientName", "required"),
    (PDE, "reportStatus", None, "reportStatus", "required"),
    (PDE, "examProjectCode", "", "examProjectCode", "empty"),
    (PDE, "patientName", "张" * 51, "patientName", "length"),
    (PDE, "accessNumber", "C" * 101, "accessNumber", "length"),
    (PDE, "patientAge", 35, "patientAge", "type"),
    (PDE, "price", "285", "price", "type"),
    (PDE, "price", 1000, "price", "decimal"),
    (PDE, "price", 12.345, "price", "decimal"),
    (PDE, "sex", "3", "sex", "code"),
    (PDE, "married", "11", "married", "code"),
    (PDE, "modality", "ct", "modality", "code"),
    (PDE, "otherNoType", "1", "otherNoType", "code"),
    (PDE, "positive", "0", "positive", "code"),
    (PDE, "reportStatus", "8", "reportStatus", "code"),
    (PDE, "birthday", "19870301", "birthday", "format"),
    (PDE, "birthday", "1987-02-30", "birthday", "format"),
    (PDE, "checkTime", "2022-03-18T17:00:00", "checkTime", "format"),
    (PDE, "auditDateTime", "20220123082532", "auditDateTime", "format"),
    (PDE, "hospitalName", "某医院", "hospitalName", "unknown"),
    ("saveReminderCallRecord", "searchType", DELETE, "searchType", "required_if"),
    ("saveReminderCallRecord", "retrivaType", "0", "retrivaType", "code"),
    ("saveReminderCallRecord", "retrivalTime", "2022-11-14", "retrivalTime", "format"),
    ("saveReminderCallRecord", "queryDocCode", "01234567890", "queryDocCode", "length"),
    ("saveRecognExamRecord", "recognFlag", "0", "reason", "required_if"),
    ("saveRecognExamRecord", "quoteFlag", "Y", "quoteFlag", "code"),
    ("saveRecognExamRecord", "examId", "9" * 100, "examId", "length"),
    ("queryFormerlyExam", "searchType", "2", "examProjectCode", "required_if"),
    ("queryFormerlyExam", "searchType", "历史", "searchType", "code"),
    ("queryFormerlyExam", "checkEndTime", "2022-03-19 24:00:00", "checkEndTime", "format"),
    ("queryFormerlyExam", "mac", DELETE, "mac", "required"),
    ("projectContrast", "projects", [], "projects", "cardinality"),
    ("projectContrast", "projects", {"projectItemCode": "X"}, "projects", "type"),
    ("projectContrast", "projects[1].type", "CT", "projects[1].type", "code"),
    ("projectContrast", "projects[0].sampleTypeCode", DELETE, "projects[0].sampleTypeCode", "required"),
    (
        "projectContrast",
        "projects[1].standardProjectList[1].standardProjectCode",
        DELETE,
        "projects[1].standardProjectList[1].standardProjectCode",
        "required",
    ),
    (
        "projectContrast",
        "projects[0].standardProjectList[0].standardProjectName",
        "胸" * 21,
        "projects[0].standardProjectList[0].standardProjectName",
        "length",
    ),
    ("projectContrast", "projects[0].price", 285.555, "projects[0].price", "decimal"),
    ("uploadDicom", "instanceUid", "1." * 31, "instanceUid", "length"),
    ("uploadDicom", "dicomFile", "dicom文件上传", "dicomFile", "type"),
    ("uploadDicom", "dicomFile", DELETE, "dicomFile", "required"),
    ("saveExamPdf", "accessNumber", DELETE, "accessNumber", "required"),
    ("getdigitalImageUrl", "examId", "E" * 51, "examId", "length"),
    ("getToken", "uid", DELETE, "uid", "required"),
    ("getToken", "appSecret", "s" * 51, "appSecret", "length"),
    ("queryExamPdfData", "queryDocName", "医" * 11, "queryDocName", "length"),
]


@pytest.mark.parametrize(("name", "path", "value", "where", "rule"), MUTATIONS, ids=[f"{m[0]}:{m[1]}:{m[4]}" for m in MUTATIONS])
def test_mutation_fails_with_rule_at_path(specs: Any, name: str, path: str, value: Any, where: str, rule: str) -> None:
    msg = mutate(base(specs, name), path, value if value is DELETE else copy.deepcopy(value))
    res = iface(specs, name).validate_request(msg)
    assert not res.valid
    assert (where, rule) in findings(res), [(e.path, e.rule) for e in res.errors]


def test_third_item_nested_path(specs: Any) -> None:
    msg = base(specs, "projectContrast")
    msg["projects"].append(copy.deepcopy(msg["projects"][0]))
    msg["projects"][2]["standardProjectList"][0]["standardProjectCode"] = "X" * 21
    res = iface(specs, "projectContrast").validate_request(msg)
    assert findings(res) == {("projects[2].standardProjectList[0].standardProjectCode", "length")}


def test_every_error_is_reported(specs: Any) -> None:
    msg = base(specs, PDE)
    for k in ("patientName", "regTime", "criticalValue"):
        del msg[k]
    msg["sex"], msg["birthday"] = "X", "1987/03/01"
    got = findings(iface(specs, PDE).validate_request(msg))
    assert {
        ("patientName", "required"),
        ("regTime", "required"),
        ("criticalValue", "required"),
        ("sex", "code"),
        ("birthday", "format"),
    } <= got


def test_required_findings_may_be_empty_strings(specs: Any) -> None:
    msg = base(specs, PDE)
    msg["imageDescription"] = msg["conclusion"] = ""  # 检查所见无内容时可传空值
    assert iface(specs, PDE).validate_request(msg).valid


def test_conditional_fields_optional_when_condition_false(specs: Any) -> None:
    msg = base(specs, "saveReminderCallRecord")
    msg["retrivaType"] = "3"
    del msg["searchType"]
    assert iface(specs, "saveReminderCallRecord").validate_request(msg).valid
    rec = base(specs, "saveRecognExamRecord")
    assert rec["recognFlag"] == "1" and "reason" not in rec
    assert iface(specs, "saveRecognExamRecord").validate_request(rec).valid


def test_wire_json_bytes(specs: Any) -> None:
    """The document's JSON, as bytes, takes the same path as a decoded dict."""
    ci = iface(specs, "saveRecognExamRecord")
    doc = base(specs, "saveRecognExamRecord")
    ok = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    assert ci.validate_request(ok).valid
    bad = json.dumps({**doc, "recognFlag": "0"}, ensure_ascii=False).encode("utf-8")
    assert findings(ci.validate_request(bad)) == {("reason", "required_if")}


# -- SM2-encrypted idCardNo ----------------------------------------------------------------------------


def test_encrypted_id_card_length_not_checked_on_the_wire(specs: Any) -> None:
    ciphertext = "BP" + "A" * 150 + "=="  # a Base64 SM2 ciphertext of an 18-digit ID is ~152 characters
    for name in (PDE, "queryFormerlyExam"):
        msg = mutate(base(specs, name), "idCardNo", ciphertext)
        assert iface(specs, name).validate_request(msg).valid


def test_encrypted_id_card_length_checked_on_plaintext(specs: Any) -> None:
    msg = mutate(base(specs, PDE), "idCardNo", "1" * 51)
    res = iface(specs, PDE).validate_request(msg, plaintext=True)
    assert ("idCardNo", "length") in findings(res)
    # the plaintext ID never leaks into a finding
    assert [e.actual for e in res.errors if e.path == "idCardNo"] == ["***"]


# -- headers -----------------------------------------------------------------------------------------------


def test_x_token_header(specs: Any) -> None:
    ci = iface(specs, PDE)
    body = base(specs, PDE)
    assert ci.validate_request(body, headers={"X-Token": "34383213ADc@32IOa13ADc@3"}).valid
    assert ("headers.X-Token", "required") in findings(ci.validate_request(body, headers={}))
    assert ("headers.X-Token", "length") in findings(ci.validate_request(body, headers={"X-Token": "t" * 100}))


def test_get_token_carries_no_x_token(specs: Any) -> None:
    ci = iface(specs, "getToken")
    assert ci.validate_request(base(specs, "getToken"), headers={}).valid


# -- multipart files ---------------------------------------------------------------------------------------


def test_pdf_size_limit(specs: Any) -> None:
    ci = iface(specs, "saveExamPdf")
    msg = base(specs, "saveExamPdf")
    msg["examPdf"] = {"filename": "r.pdf", "content_type": "application/pdf", "size": 2_000_000}
    assert ci.validate_request(msg).valid
    msg["examPdf"]["size"] = 2_000_001
    assert findings(ci.validate_request(msg)) == {("examPdf", "size")}
    msg["examPdf"] = b"%PDF-1.4\n" + b"0" * 2_000_000
    assert findings(ci.validate_request(msg)) == {("examPdf", "size")}


def test_multipart_text_parts_are_strings(specs: Any) -> None:
    """Form parts arrive as text: a UID is never a number, a missing one is reported."""
    ci = iface(specs, "uploadDicom")
    msg = base(specs, "uploadDicom")
    del msg["studyUid"]
    assert findings(ci.validate_request(msg)) == {("studyUid", "required")}


# -- responses ---------------------------------------------------------------------------------------------


def test_query_response_aliases_and_tolerance(specs: Any) -> None:
    ci = iface(specs, "queryFormerlyExam")
    doc = base(specs, "queryFormerlyExam", "response")
    res = ci.validate_response(doc)
    assert res.valid
    warned = {(w.path, w.rule) for w in res.warnings}
    assert ("datas[0].orgName", "alias") in warned and ("datas[0].studyUID", "alias") in warned
    doc["datas"][0]["patientType"] = "4"  # 急诊 exists on input only: tolerated
    res = ci.validate_response(doc)
    assert res.valid and ("datas[0].patientType", "code") in {(w.path, w.rule) for w in res.warnings}
    doc["datas"][0]["sex"] = "5"
    assert findings(ci.validate_response(doc)) == {("datas[0].sex", "code")}


def test_token_response(specs: Any) -> None:
    ci = iface(specs, "getToken")
    assert ci.validate_response({"code": 200, "msg": "操作成功", "datas": {"token": "t" * 99}}).valid
    res = ci.validate_response({"code": 200, "msg": "操作成功", "datas": {"token": "t" * 100}})
    assert findings(res) == {("datas.token", "length")}
    assert findings(ci.validate_response({"code": "200", "msg": "x"})) == {("code", "type")}


def test_pdf_query_success_is_binary(specs: Any) -> None:
    ci = iface(specs, "queryExamPdfData")
    assert ci.spec.success.prefix == "%PDF-"
    assert ci.validate_response(b"%PDF-1.4\n%%EOF\n").valid

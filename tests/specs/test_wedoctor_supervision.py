"""wedoctor_supervision (document 003): signed-header envelope, `data` as a JSON array carried in a string,
selectively required pairs, hex and multipart attachments, the batch and size limits.

Bases are written from the document's tables (independently of the YAML examples); every mutation breaks
one thing inside the carried `data` rows (or the headers) and must be reported at its path.
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
PLATFORM = "wedoctor_supervision"
DELETE = object()
PATHS = {
    "A0000": "/ihs/api/public/attachment",
    "A0001": "/ihs/api/public/bigAttachment",
    "A1000": "/ihs/api/base/hospital",
    "A1001": "/lhs/api/base/department",  # sic in the document
    "A1002": "/ihs/api/base/medicalPersonnel",
    "A2000": "/ihs/api/returnVisit/order",
    "A2001": "/ihs/api/returnVisit/info",
    "A2010": "/ihs/api/consultation/info",
}
INTERFACES = sorted(PATHS)


@pytest.fixture(scope="module")
def specs() -> Any:
    return load_specs(ROOT / "specs", strict=False)


def iface(specs: Any, name: str) -> Any:
    return specs.interface(f"{PLATFORM}/{name}")


def headers(service: str) -> dict[str, str]:
    return {
        "service": service,
        "appid": "wy_hosp_001",
        "randomstr": "9b1deb4d3b7d4bad9bdd2b0d7b3dcb6d",
        "sign": "E10ADC3949BA59ABBE56E057F20F883E",
    }


def envelope(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"uptime": "2020-02-25 10:00:00", "data": json.dumps(list(rows), ensure_ascii=False)}


ROWS: dict[str, dict[str, Any]] = {
    "A0000": {"attaService": "01", "attaId": "H001-LIC", "fileType": "jpg", "content": "ffd8ffe000104a464946"},
    "A1000": {
        "hospId": "H001",
        "hospName": "示例互联网医院",
        "hospAddress": "杭州市西湖区",
        "hospPhone": "0571-88888888",
        "hospArea": 330106,
        "hospLevel": 30,
        "hospType": "999",
        "hospCategory": 0,
        "attachment": [{"attaType": 1, "attaId": "H001-LIC"}, {"attaType": 4, "attaId": "H001-ID"}],
    },
    "A1001": {"deptCode": "D01", "deptName": "内科", "parentId": "-1", "hasChild": 1, "status": 0},
    "A1002": {
        "deptCode": "D01",
        "deptName": "内科",
        "type": 3,
        "status": 1,
        "code": "E9",
        "name": "赵药师",
        "certificateType": 1,
        "certificateNo": "X1",
        "techTitle": 2,
        "rank": 9,
        "sex": 2,
        "mobile": "13800000000",
        "validDate": "2025-12-31",
        "attachment": [{"attaType": 3, "attaId": "E9-ID"}],
    },
    "A2000": {
        "flowNo": "F1",
        "orderId": "O1",
        "createTime": "2020-02-25 23:59:59",
        "deptCode": "D01",
        "deptName": "内科",
        "docCode": "E1",
        "docName": "王",
        "channelType": 1,
        "payType": 2,
        "name": "张三",
        "age": 0.5,
        "sex": 1,
        "birthday": "2019-08-29",
        "mobile": "138",
        "certifcateType": 1,
        "certifcateNo": "110101201908291234",
        "amount": 1500,
        "status": "待支付",
    },
    "A2001": {
        "flowNo": "F1",
        "orderId": "O1",
        "startTime": "2020-02-25 09:00:00",
        "endTime": "2020-02-25 09:20:00",
        "description": "咳嗽",
        "recipeId": "RX1",
        "recordId": "EMR1",
        "lastDisbaseCode": "J20.9",
        "lastDisbase": "急性支气管炎",
        "process": [{"processTime": "2020-02-25 09:01:00", "role": 1, "content": "咳" * 500}],
    },
    "A2010": {
        "flowNo": "F9",
        "consultId": "C9",
        "applyHospId": "H2",
        "applyHospName": "乙院",
        "applyTime": "2020-02-24 08:00:00",
        "startTime": "2020-02-25 08:00:00",
        "endTime": "2020-02-25 09:00:00",
        "status": "完成",
        "amount": 30000.00,
        "consultType": 3,
        "consultFlag": 2,
        "name": "李四",
        "age": 70,
        "sex": 1,
        "birthday": "1950-01-01",
        "chiefComplaint": "胸痛",
        "presentHistory": "三月",
        "mobile": "139",
        "certificateType": 1,
        "certificateNo": "110101195001011234",
    },
}
A0001_FORM = {
    "attaService": "15",
    "attaId": "EMR1-SCAN",
    "fileType": "pdf",
    "fileUpload": {"filename": "scan.pdf", "content_type": "application/pdf", "size": 200 * 1024 * 1024},
    "uptime": "2020-02-25 10:00:00",
    "data": "",
}

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def mutate(msg: Any, path: str, value: Any) -> Any:
    msg = copy.deepcopy(msg)
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


# -- the spec tree --------------------------------------------------------------------------------------


def test_platform_loads_without_errors(specs: Any) -> None:
    mine = [f for f in specs.findings if f"platforms/{PLATFORM}/" in str(f.file).replace("\\", "/")]
    assert [str(f) for f in mine if f.severity != "info"] == []


def test_visible_interfaces_and_bindings(specs: Any) -> None:
    assert sorted(specs.platforms[PLATFORM].interfaces) == INTERFACES
    for name, path in PATHS.items():
        http = iface(specs, name).spec.binding.http
        assert (http.method, http.path, http.headers) == ("POST", path, {"service": name})
    assert iface(specs, "A0001").spec.binding.http.content_type == "multipart/form-data"


def test_signing_is_configuration_not_guesswork(specs: Any) -> None:
    plat = specs.platforms[PLATFORM].platform
    assert plat.crypto is not None and plat.crypto.signature is not None  # recipe missing from the document: a setting
    assert plat.auth.kind == "signature" and plat.auth.carry.in_ == "header" and plat.auth.carry.name == "sign"
    assert plat.auth.credentials == ["appid", "key"]
    assert "missing" in plat.auth.note and "section 4" in plat.auth.note


def test_limits_and_success(specs: Any) -> None:
    plat = specs.platforms[PLATFORM].platform
    assert plat.transport.max_request_bytes == 30 * 1024 * 1024
    assert plat.limits == {"max_batch": 10000, "advised_batch": 100}
    assert plat.success.field == "code" and plat.success.in_ == ["0"]
    assert {c: e.action for c, e in plat.errors.items()} == {"0": "ok", "SYSTEM_ERROR": "retry"}
    assert iface(specs, "A0001").spec.limits == {"max_request_bytes": 0}  # 30MB excludes 超大附件


def test_code_table_counts_match_document(specs: Any) -> None:
    codes = specs.platforms[PLATFORM].codes
    rows = (ROOT / "tests/fields/wedoctor_supervision.codes.tsv").read_text(encoding="utf-8").split("\n")
    want = {t: int(n) for t, n in (r.split("\t") for r in rows if r.strip())}
    assert {cid: len(t.values) for cid, (t, _) in codes.items()} == want
    assert "011" in codes["hosp_type"][0].values  # leading zeros kept


# -- examples -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INTERFACES)
def test_yaml_examples(specs: Any, name: str) -> None:
    ci = iface(specs, name)
    for ex in ci.spec.examples:
        validate = ci.validate_request if ex.part == "request" else ci.validate_response
        res = validate(ex.body, ex.headers)
        if ex.valid:
            assert res.valid, (ex.name, [(e.path, e.rule, e.message) for e in res.errors])
        else:
            assert {(e["path"], e["rule"]) for e in ex.errors} <= findings(res), (ex.name, findings(res))


def _base(name: str) -> Any:
    return copy.deepcopy(A0001_FORM) if name == "A0001" else envelope(ROWS[name])


@pytest.mark.parametrize("name", INTERFACES)
def test_bases_validate(specs: Any, name: str) -> None:
    ci = iface(specs, name)
    res = ci.validate_request(_base(name), headers(name))
    assert res.valid, [(e.path, e.rule, e.message) for e in res.errors]
    if name != "A0001":  # on the wire too: the body double-encoded as JSON
        assert ci.validate_request(json.dumps(_base(name), ensure_ascii=False).encode("utf-8"), headers(name)).valid
    for rsp in ({"code": "0"}, {"code": "SYSTEM_ERROR", "message": "系统错误"}, {"code": "0", "data": ""}):
        assert ci.validate_response(rsp).valid, rsp


def test_document_data_example_cleaned(specs: Any) -> None:
    """1.4's example with the unescaped quote fixed: hospId (the table's OCR'd hospld is not a field)."""
    ci = iface(specs, "A1000")
    row = {k: v for k, v in ROWS["A1000"].items() if k != "attachment"}
    assert ci.validate_request(envelope(row), headers("A1000")).valid
    row["hospld"] = row.pop("hospId")
    assert {("data[0].hospId", "required"), ("data[0].hospld", "unknown")} <= findings(ci.validate_request(envelope(row), headers("A1000")))


# -- mutations: one per rule kind each interface uses ----------------------------------------------------

ROW_MUTATIONS = [
    # (interface, path inside the first data row, bad value, expected rule)
    ("A0000", "attaService", "1", "code"),
    ("A0000", "attaService", "011", "length"),
    ("A0000", "attaId", DELETE, "required"),
    ("A0000", "fileType", "jpeg2000x", "length"),
    ("A0000", "content", "ffd8f", "format"),  # odd number of hex digits
    ("A0000", "content", "not hex", "format"),
    ("A0000", "content", 255, "type"),
    ("A1000", "hospLevel", 34, "code"),
    ("A1000", "hospLevel", "33", "type"),
    ("A1000", "hospType", "11", "code"),
    ("A1000", "hospCategory", 3, "code"),
    ("A1000", "hospArea", DELETE, "required"),
    ("A1000", "legalIdCard", "1" * 19, "length"),
    ("A1000", "attachment", {"attaType": 1, "attaId": "x"}, "type"),
    ("A1000", "attachment[1].attaType", 5, "code"),
    ("A1000", "attachment[0].attaId", "x" * 65, "length"),
    ("A1001", "hasChild", 2, "code"),
    ("A1001", "status", DELETE, "required"),
    ("A1001", "parentId", -1, "type"),
    ("A1001", "deptName", "科" * 33, "length"),
    ("A1002", "type", 6, "code"),
    ("A1002", "rank", 7, "code"),
    ("A1002", "isOnline", 2, "code"),
    ("A1002", "techTitle", DELETE, "required"),
    ("A1002", "firstDate", "2010-13-01", "format"),
    ("A1002", "validDate", "20251231", "format"),
    ("A1002", "attachment[0].attaType", 4, "code"),
    ("A1002", "mobile", "1" * 17, "length"),
    ("A2000", "createTime", "2020-02-25 24:00:00", "format"),
    ("A2000", "birthday", "2019-8-29", "format"),
    ("A2000", "age", 12.34, "decimal"),
    ("A2000", "amount", 1.005, "decimal"),
    ("A2000", "amount", DELETE, "required"),
    ("A2000", "status", "状" * 17, "length"),
    ("A2000", "channelType", "1", "type"),
    ("A2001", "process", [], "cardinality"),
    ("A2001", "process", DELETE, "required"),
    ("A2001", "process[0].role", 0, "code"),
    ("A2001", "process[0].content", "咳" * 501, "length"),
    ("A2001", "process[0].processTime", "2020-02-25", "format"),
    ("A2001", "recordId", DELETE, "required"),
    ("A2001", "lastVisitDate", "2020-01-10 10:00:00", "format"),
    ("A2010", "consultType", 4, "code"),
    ("A2010", "consultFlag", 0, "code"),
    ("A2010", "presentHistory", DELETE, "required"),
    ("A2010", "applyTime", "2020-02-24T08:00:00", "format"),
    ("A2010", "age", 70.25, "decimal"),
]


@pytest.mark.parametrize(("name", "path", "value", "rule"), ROW_MUTATIONS, ids=[f"{m[0]}-{m[1]}-{m[3]}" for m in ROW_MUTATIONS])
def test_row_mutation_found_inside_carried_data(specs: Any, name: str, path: str, value: Any, rule: str) -> None:
    ci = iface(specs, name)
    row = mutate(ROWS[name], path, value)
    second = mutate(ROWS[name], "flowNo", "F2") if "flowNo" in ROWS[name] else copy.deepcopy(ROWS[name])
    # the broken row is second in the batch: the path must carry its index
    res = ci.validate_request(envelope(second, row), headers(name))
    assert (f"data[1].{path}", rule) in findings(res), findings(res)
    assert not [f for f in findings(res) if f[0].startswith("data[0]")]
    wire = json.dumps(envelope(second, row), ensure_ascii=False).encode("utf-8")
    assert findings(ci.validate_request(wire, headers(name))) == findings(res)


def test_every_interface_has_row_mutations() -> None:
    assert {m[0] for m in ROW_MUTATIONS} == set(ROWS)


@pytest.mark.parametrize(
    ("name", "drop"),
    [
        ("A2000", ["certifcateType", "certifcateNo"]),
        ("A2000", ["certifcateNo"]),
        ("A2010", ["certificateType", "certificateNo"]),
        ("A2010", ["certificateType"]),
    ],
)
def test_selectively_required_pairs(specs: Any, name: str, drop: list[str]) -> None:
    """certificate type+no or card type+no (选择性必填): at least one complete pair."""
    ci = iface(specs, name)
    row = {k: v for k, v in ROWS[name].items() if k not in drop}
    assert ("data[0]", "one_of") in findings(ci.validate_request(envelope(row), headers(name)))
    with_card = {**row, "cardType": 1, "cardNo": "C1"}
    assert ci.validate_request(envelope(with_card), headers(name)).valid
    half_card = {**row, "cardType": 1}
    assert ("data[0]", "one_of") in findings(ci.validate_request(envelope(half_card), headers(name)))


def test_a2000_certificate_spelling_alias(specs: Any) -> None:
    """The table spells certifcate*, the note and history certificate*: both are accepted."""
    ci = iface(specs, "A2000")
    row = dict(ROWS["A2000"])
    row["certificateType"], row["certificateNo"] = row.pop("certifcateType"), row.pop("certifcateNo")
    assert ci.validate_request(envelope(row), headers("A2000")).valid


def test_a2010_is_truncated_so_unknown_row_fields_warn(specs: Any) -> None:
    ci = iface(specs, "A2010")
    res = ci.validate_request(envelope({**ROWS["A2010"], "remark": "备注", "recordId": "EMR9"}), headers("A2010"))
    assert res.valid
    assert {w.path for w in res.warnings} >= {"data[0].remark", "data[0].recordId"}
    # complete interfaces reject them
    res = iface(specs, "A2001").validate_request(envelope({**ROWS["A2001"], "remark": "x"}), headers("A2001"))
    assert ("data[0].remark", "unknown") in findings(res)


# -- the envelope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["service", "appid", "randomstr", "sign"])
def test_each_signed_header_is_required(specs: Any, header: str) -> None:
    h = {k: v for k, v in headers("A1001").items() if k != header}
    res = iface(specs, "A1001").validate_request(envelope(ROWS["A1001"]), h)
    assert (f"headers.{header}", "required") in findings(res)


def test_header_lengths_and_case(specs: Any) -> None:
    ci = iface(specs, "A1001")
    res = ci.validate_request(envelope(ROWS["A1001"]), {**headers("A1001"), "randomstr": "r" * 33})
    assert ("headers.randomstr", "length") in findings(res)
    # HTTP header names are case-insensitive; other transport headers are not envelope fields
    h = {k.upper(): v for k, v in headers("A1001").items()} | {"Content-Type": "application/json"}
    assert ci.validate_request(envelope(ROWS["A1001"]), h).valid


def test_service_header_must_name_this_interface(specs: Any) -> None:
    res = iface(specs, "A1001").validate_request(envelope(ROWS["A1001"]), headers("A1000"))
    assert "headers.service" in {p for p, _ in findings(res)}


@pytest.mark.parametrize(
    ("body", "path", "rule"),
    [
        ({"data": "[]"}, "uptime", "required"),
        ({"uptime": "2020-02-25 10:00", "data": "[]"}, "uptime", "format"),
        ({"uptime": "2020-02-25 10:00:00"}, "data", "required"),
        ({"uptime": "2020-02-25 10:00:00", "data": "[]"}, "data", "cardinality"),
        ({"uptime": "2020-02-25 10:00:00", "data": '{"deptCode":"D01"}'}, "data", "type"),
        ({"uptime": "2020-02-25 10:00:00", "data": "[{"}, "data", "parse"),
        ({"uptime": "2020-02-25 10:00:00", "data": []}, "data", "type"),
        ({"uptime": "2020-02-25 10:00:00", "data": "[]", "extra": 1}, "extra", "unknown"),
    ],
)
def test_envelope_body(specs: Any, body: dict[str, Any], path: str, rule: str) -> None:
    assert (path, rule) in findings(iface(specs, "A1001").validate_request(body, headers("A1001")))


def test_batch_limit_is_10000_rows(specs: Any) -> None:
    ci = iface(specs, "A1001")
    rows = [dict(ROWS["A1001"], deptCode=f"D{i}") for i in range(10000)]
    assert ci.validate_request(envelope(*rows), headers("A1001")).valid
    res = ci.validate_request(envelope(*rows, dict(ROWS["A1001"], deptCode="D10000")), headers("A1001"))
    assert ("data", "cardinality") in findings(res)


def test_request_size_limit_30mb(specs: Any) -> None:
    ci = iface(specs, "A0000")
    hex_len = 30 * 1024 * 1024  # 15 MiB of file as hex: the body passes 30 MiB
    big = json.dumps(envelope(dict(ROWS["A0000"], content="ab" * (hex_len // 2)))).encode()
    assert len(big) > 30 * 1024 * 1024
    assert ("$", "size") in findings(ci.validate_request(big, headers("A0000")))
    small = json.dumps(envelope(dict(ROWS["A0000"], content="ab" * (hex_len // 4)))).encode()
    assert ci.validate_request(small, headers("A0000")).valid


# -- A0001 multipart ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        ("data", "[]", "pattern"),  # must be "" or the signature fails
        ("data", DELETE, "required"),
        ("fileUpload", DELETE, "required"),
        ("fileUpload", "二进制流", "type"),
        ("attaService", "16", "code"),
        ("uptime", "2020-02-25", "format"),
        ("attaId", "x" * 129, "length"),
    ],
)
def test_a0001_form_fields(specs: Any, path: str, value: Any, rule: str) -> None:
    res = iface(specs, "A0001").validate_request(mutate(A0001_FORM, path, value), headers("A0001"))
    assert (path, rule) in findings(res), findings(res)


def test_a0001_has_no_envelope_and_no_size_cap_of_its_own(specs: Any) -> None:
    ci = iface(specs, "A0001")
    assert ci.request.body.format == "multipart"
    assert ci.validate_request(A0001_FORM, headers("A0001")).valid  # a 200 MB file part is fine
    res = ci.validate_request(envelope(ROWS["A0000"]), headers("A0001"))
    assert ("attaService", "required") in findings(res)

"""The spec language on a small fixture platform: every rule kind, paths, and the fast path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.spec import load_specs
from engine.spec.checks import id_card_check_digit

FIXTURES = Path(__file__).parent / "fixtures"
BASE: dict[str, Any] = {
    "orderNo": "AB12",
    "patient": {"name": "张三", "sex": "1"},
    "checkTime": "2024-02-29 10:00:00",
    "birthday": "19900307",
    "price": 285.1,
    "count": 3,
    "urgent": False,
    "certNo": "C1",
    "certType": "1",
    "items": [{"code": "X1", "subs": [{"value": "abc"}]}, {"code": "X2"}],
    "tags": ["a", "bb"],
}


@pytest.fixture(scope="module")
def upload():
    return load_specs(FIXTURES / "good").interface("acme/upload")


def _set(msg: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    msg = copy.deepcopy(msg)
    parts = path.replace("[", ".").replace("]", "").split(".")
    cur: Any = msg
    for p in parts[:-1]:
        cur = cur[int(p)] if p.isdigit() else cur[p]
    last = parts[-1]
    if value is DELETE:
        del cur[int(last) if last.isdigit() else last]
    else:
        cur[int(last) if last.isdigit() else last] = value
    return msg


DELETE = object()
VALID_ID = "11010519491231002" + id_card_check_digit("11010519491231002")

MUTATIONS = [
    ("orderNo", DELETE, "orderNo", "required"),
    ("orderNo", "", "orderNo", "empty"),
    ("orderNo", None, "orderNo", "required"),
    ("orderNo", "A" * 21, "orderNo", "length"),
    ("orderNo", "AB1", "orderNo", "length"),
    ("orderNo", "ab12", "orderNo", "pattern"),
    ("orderNo", 1234, "orderNo", "type"),
    ("patient.name", "张三李四王五", "patient.name", "length"),  # 12 GB2312 bytes > 10
    ("patient.sex", "3", "patient.sex", "code"),
    ("patient.idCard", "110105194912310020", "patient.idCard", "check:id_card"),
    ("birthday", "1990-03-07", "birthday", "format"),
    ("birthday", "19900230", "birthday", "format"),
    ("checkTime", "2023-02-29 10:00:00", "checkTime", "format"),
    ("checkTime", "2024-02-29 24:00:00", "checkTime", "format"),
    ("price", 1000.5, "price", "decimal"),
    ("price", 1.234, "price", "decimal"),
    ("price", "285", "price", "type"),
    ("count", 100, "count", "range"),
    ("count", 1.5, "count", "type"),
    ("count", True, "count", "type"),
    ("urgent", "yes", "urgent", "type"),
    ("reportType", "1", "reportText", "required_if"),
    ("certType", DELETE, "$", "one_of"),
    ("items", [], "items", "cardinality"),
    ("items", [{"code": "1"}] * 4, "items", "cardinality"),
    ("items[1].code", "TOOLONG", "items[1].code", "length"),
    ("items[0].subs[0].value", "abcd", "items[0].subs[0].value", "length"),
    ("items[0].subs[0].extra", "x", "items[0].subs[0].extra", "unknown"),
    ("tags[1]", "toolong", "tags[1]", "length"),
    ("tags", "a", "tags", "type"),
    ("pdf", "not base64!", "pdf", "format"),
    ("pdf", "AAAAAAAAAAAAAAAA", "pdf", "size"),
    ("unexpected", 1, "unexpected", "unknown"),
]


def test_base_message_is_valid(upload) -> None:
    res = upload.validate_request(json.dumps(BASE, ensure_ascii=False))
    assert res.valid, res.errors
    assert res.value["orderNo"] == "AB12"


@pytest.mark.parametrize(("path", "value", "where", "rule"), MUTATIONS)
def test_each_rule_fails_at_its_path(upload, path: str, value: Any, where: str, rule: str) -> None:
    msg = _set(BASE, path, value)
    for data in (msgspec.json.encode(msg), msg):  # wire bytes (fast path first) and decoded data
        res = upload.validate_request(data)
        assert not res.valid
        assert (where, rule) in {(e.path, e.rule) for e in res.errors}, res.errors


def test_all_errors_are_reported_not_just_the_first(upload) -> None:
    msg = _set(_set(_set(BASE, "orderNo", DELETE), "patient.sex", "7"), "items[1].code", "TOOLONG")
    res = upload.validate_request(msgspec.json.encode(msg))
    assert {(e.path, e.rule) for e in res.errors} >= {("orderNo", "required"), ("patient.sex", "code"), ("items[1].code", "length")}


def test_findings_carry_expected_and_actual(upload) -> None:
    res = upload.validate_request(_set(BASE, "patient.sex", "7"))
    (err,) = res.errors
    assert err.expected == "sex" and err.actual == "7"


def test_id_numbers_are_never_echoed(upload) -> None:
    res = upload.validate_request(_set(BASE, "patient.idCard", "110105194912310020"))
    assert "110105194912310020" not in json.dumps(res.to_dict(), ensure_ascii=False)
    assert upload.validate_request(_set(BASE, "patient.idCard", VALID_ID)).valid


def test_optional_empty_string_counts_as_absent(upload) -> None:
    assert upload.validate_request(msgspec.json.encode(_set(BASE, "patient.sex", ""))).valid


def test_headers_are_validated_with_conditions(upload) -> None:
    ok = {"X-Token": "t" * 10, "signtype": "0"}
    assert upload.validate_request(BASE, headers=ok).valid
    res = upload.validate_request(BASE, headers={"x-token": "t", "signtype": "1"})
    assert ("headers.sign", "required_if") in {(e.path, e.rule) for e in res.errors}
    res = upload.validate_request(BASE, headers={"signtype": "0"})
    assert ("headers.X-Token", "required") in {(e.path, e.rule) for e in res.errors}


def test_fast_path_agrees_with_complete_walker(upload) -> None:
    """The fast path may only ever say 'valid' when the walker agrees, for every mutation."""
    body = upload.request
    assert body.has_fast_path
    for path, value, _, _ in MUTATIONS:
        msg = _set(BASE, path, value)
        raw = msgspec.json.encode(msg)
        fast_valid = False
        try:
            obj = body._decoder.decode(raw)
            fast_valid = body._check is None or body._check(obj)
        except msgspec.ValidationError:
            pass
        walker_valid = body.validate(msg).valid
        assert not (fast_valid and not walker_valid), path


def test_carried_payloads_and_soap_params() -> None:
    iface = load_specs(FIXTURES / "good").interface("acme/payload")
    good = {"strReport": "<report><id>R1</id><n>3</n><item><v>a</v></item><item><v>b</v></item></report>",
            "strData": json.dumps([{"a": "x"}])}
    assert iface.validate_request(good).valid
    bad = {"strReport": "<report><id>TOO-LONG-ID</id><n>x</n></report>", "strData": json.dumps([{"b": 1}, {"a": "y"}, {"a": "z"}])}
    got = {(e.path, e.rule) for e in iface.validate_request(bad).errors}
    assert {("strReport.id", "length"), ("strReport.n", "type"), ("strReport.item", "required"),
            ("strData", "cardinality"), ("strData[0].a", "required"), ("strData[0].b", "unknown")} <= got
    wrong_root = iface.validate_request({**good, "strReport": "<other/>"})
    assert ("strReport", "parse") in {(e.path, e.rule) for e in wrong_root.errors}
    envelope = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Archive>'
        f"<strReport>{_xml_escape(good['strReport'])}</strReport><strData>{_xml_escape(good['strData'])}</strData>"
        "</Archive></s:Body></s:Envelope>"
    )
    assert iface.validate_request(envelope.encode()).valid


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_text_results() -> None:
    iface = load_specs(FIXTURES / "good").interface("acme/payload")
    assert iface.validate_response("ok:123").valid
    assert iface.validate_response("error:bad").valid
    assert iface.validate_response("nonsense").errors[0].rule == "pattern"


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b'{"orderNo": "AB12"', "parse"),
        (b"not json", "parse"),
        ('{"orderNo": "张三"}'.encode("gbk"), "parse"),
        (b"{" + b" " * (33 * 1024 * 1024) + b"}", "size"),
    ],
)
def test_malformed_input_is_one_clear_finding(upload, data: bytes, rule: str) -> None:
    res = upload.validate_request(data)
    assert [e.rule for e in res.errors] == [rule]
    assert "\n" not in res.errors[0].message


def test_entity_bomb_and_external_entities_are_refused() -> None:
    iface = load_specs(FIXTURES / "good").interface("acme/payload")
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            "<report><id>&b;</id></report>")
    xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><report><id>&x;</id></report>'
    for payload in (bomb, xxe):
        res = iface.validate_request({"strReport": payload, "strData": "[]"})
        assert ("strReport", "parse") in {(e.path, e.rule) for e in res.errors}
        assert "passwd" not in json.dumps(res.to_dict())

"""city_lab_mr (document 000): examples, mutation table, headers, errors, auth, keys."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from engine.spec import load_specs

ROOT = Path(__file__).resolve().parents[2]
P = "city_lab_mr"
IFACES = ["accesstoken", "HR01", "HR02", "HR03", "HR04", "HR05"]
DROP = object()  # mutation: delete the key

HEADERS = {"authoritytype": "2", "access_token": "tok", "secrettype": "0", "heartbeat": "0", "testmarker": "0", "elementsVersion": "1.00"}
RESP_HEADERS = {"heartbeat": "0", "messagecode": "1000", "messagetext": "%E6%88%90%E5%8A%9F"}


@pytest.fixture(scope="module")
def specs() -> Any:
    # strict=False: other platforms' work in progress must not hide this platform's findings
    return load_specs(ROOT / "specs", strict=False)


def iface(specs: Any, name: str) -> Any:
    return specs.interface(f"{P}/{name}")


def example(specs: Any, name: str, part: str) -> Any:
    """The document's example (the first valid example of that part), deep-copied."""
    for ex in iface(specs, name).spec.examples:
        if ex.part == part and ex.valid:
            return copy.deepcopy(ex.body)
    raise LookupError(name, part)


def mutate(data: Any, path: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    cur = data
    for p in parts[:-1]:
        cur = cur[p]
    if value is DROP:
        del cur[parts[-1]]
    else:
        cur[parts[-1]] = value
    return data


def rules(res: Any) -> set[tuple[str, str]]:
    return {(e.path, e.rule) for e in res.errors}


def test_platform_has_no_findings(specs: Any) -> None:
    mine = [str(f) for f in specs.errors if f"platforms/{P}/" in str(f)]
    assert mine == []
    assert sorted(specs.platforms[P].interfaces) == sorted(IFACES)


@pytest.mark.parametrize("name", IFACES)
def test_examples_behave_as_declared(specs: Any, name: str) -> None:
    i = iface(specs, name)
    assert any(ex.valid and ex.part == "request" for ex in i.spec.examples)
    assert any(ex.valid and ex.part == "response" for ex in i.spec.examples)
    for ex in i.spec.examples:
        fn = i.validate_request if ex.part == "request" else i.validate_response
        res = fn(ex.body, headers=ex.headers)
        assert res.valid == ex.valid, (ex.name, res.errors)
        for want in ex.errors or []:
            assert (want["path"], want["rule"]) in rules(res), (ex.name, res.errors)


LONG150 = "医" * 150
# (interface, part, path, bad value or DROP, expected path, expected rule)
MUTATIONS = [
    ("HR01", "request", "messages", DROP, "messages", "required"),
    ("HR01", "request", "messages.EVN.eventTypeCode", "02", "messages.EVN.eventTypeCode", "pattern"),
    ("HR01", "request", "messages.EVN.eventTypeCode", "06", "messages.EVN.eventTypeCode", "code"),
    ("HR01", "request", "messages.PID.identityTypeCode", "00", "messages.PID.identityTypeCode", "code"),
    ("HR01", "request", "messages.PID.identityNo", "1" * 51, "messages.PID.identityNo", "length"),
    ("HR01", "request", "messages.PID.birthDate", "19900230", "messages.PID.birthDate", "format"),
    ("HR01", "request", "messages.PID.sexCode", 1, "messages.PID.sexCode", "type"),
    ("HR01", "request", "messages.PV1.doctorId", "0" * 19, "messages.PV1.doctorId", "length"),
    ("HR01", "request", "messages.PV1.visitNo", 10000001, "messages.PV1.visitNo", "type"),
    ("HR01", "request", "messages.PV1.computerIp", DROP, "messages.PV1.computerIp", "required"),
    ("HR01", "request", "messages.PV1.orgName", "医" * 201, "messages.PV1.orgName", "length"),
    ("HR01", "request", "messages.DG1.diagName", "诊" * 201, "messages.DG1.diagName", "length"),
    ("HR01", "request", "messages.DG1", [], "messages.DG1", "type"),
    ("HR01", "request", "messages.PID.nation", "01", "messages.PID.nation", "unknown"),
    ("HR01", "response", "messages.QAK.flag", "yes", "messages.QAK.flag", "code"),
    ("HR01", "response", "messages.EVN", DROP, "messages.EVN", "required"),
    ("HR02", "request", "messages.PV1.orgName", "医" * 101, "messages.PV1.orgName", "length"),
    ("HR02", "request", "messages.PV1.deptName", "科" * 41, "messages.PV1.deptName", "length"),
    ("HR02", "request", "messages.OBR.lab", [], "messages.OBR.lab", "cardinality"),
    ("HR02", "request", "messages.OBR.lab[0].labItemName", DROP, "messages.OBR.lab[0].labItemName", "required"),
    ("HR02", "request", "messages.OBR.lab[0].labRecognName", "检" * 501, "messages.OBR.lab[0].labRecognName", "length"),
    ("HR02", "request", "messages.OBR.lab[0].insuranceItemCode", "9" * 201, "messages.OBR.lab[0].insuranceItemCode", "length"),
    ("HR02", "request", "messages.OBR.closeMethod", "1", "messages.OBR.closeMethod", "code"),
    ("HR02", "request", "messages.PV1.visitTypeCode", "0", "messages.PV1.visitTypeCode", "code"),
    ("HR02", "response", "messages.QAK.flag", "1", "messages.QAK.flag", "code"),
    ("HR03", "request", "messages.PV1.businessId", "", "messages.PV1.businessId", "empty"),
    ("HR03", "request", "messages.PV1.businessId", "x" * 33, "messages.PV1.businessId", "length"),
    ("HR03", "request", "messages.EVN.eventTypeCode", "02", "messages.EVN.eventTypeCode", "pattern"),
    ("HR03", "response", "messages.QAK.result", DROP, "messages.QAK.result", "required_if"),
    ("HR03", "response", "messages.QAK.result.lab", DROP, "messages.QAK.result.lab", "required_if"),
    ("HR03", "response", "messages.QAK.mutualReportNumber", "3份", "messages.QAK.mutualReportNumber", "pattern"),
    ("HR03", "response", "messages.QAK.flag", "2", "messages.QAK.flag", "code"),
    ("HR03", "response", "messages.QAK.result.lab[0].recognitionResult", "yes", "messages.QAK.result.lab[0].recognitionResult", "pattern"),
    (
        "HR03",
        "response",
        "messages.QAK.result.lab[0].unrecognizedReason",
        "理" * 201,
        "messages.QAK.result.lab[0].unrecognizedReason",
        "length",
    ),
    ("HR04", "request", "messages.closeMethod", "9", "messages.closeMethod", "code"),
    ("HR04", "request", "messages.EVN.eventTypeCode", "01", "messages.EVN.eventTypeCode", "pattern"),
    ("HR04", "request", "messages.PID.visitCardTypeCode", "123", "messages.PID.visitCardTypeCode", "length"),
    ("HR04", "response", "messages.QAK.flag", DROP, "messages.QAK.flag", "required"),
    ("HR05", "request", "messages.PV1", DROP, "messages.PV1", "required"),
    ("HR05", "request", "messages.EVN.eventTypeCode", "5", "messages.EVN.eventTypeCode", "pattern"),
    ("HR05", "response", "messages.QAK.labResult", "x" * 4001, "messages.QAK.labResult", "length"),
    ("HR05", "response", "messages.QAK.flag", "Y", "messages.QAK.flag", "pattern"),
    ("accesstoken", "request", "appId", DROP, "appId", "required"),
    ("accesstoken", "response", "access_token", 1, "access_token", "type"),
]


@pytest.mark.parametrize(
    ("name", "part", "path", "value", "epath", "rule"), MUTATIONS, ids=[f"{m[0]}-{m[1]}-{m[2]}-{m[5]}" for m in MUTATIONS]
)
def test_mutation_fails_with_rule_at_path(specs: Any, name: str, part: str, path: str, value: Any, epath: str, rule: str) -> None:
    i = iface(specs, name)
    fn = i.validate_request if part == "request" else i.validate_response
    assert fn(example(specs, name, part)).valid
    res = fn(mutate(example(specs, name, part), path, value))
    assert not res.valid
    assert (epath, rule) in rules(res), res.errors


def test_pv1_length_overrides_differ_per_service(specs: Any) -> None:
    for name in ("HR01", "HR04"):
        ok = mutate(example(specs, name, "request"), "messages.PV1.orgName", LONG150)
        assert iface(specs, name).validate_request(ok).valid
    bad = mutate(example(specs, "HR02", "request"), "messages.PV1.orgName", LONG150)
    assert ("messages.PV1.orgName", "length") in rules(iface(specs, "HR02").validate_request(bad))


def test_optional_empty_strings_are_absent(specs: Any) -> None:
    """1.3: every node is sent; "" on a 0..1 field is accepted (HR02's example does it)."""
    msg = example(specs, "HR01", "request")
    for k in ("wardCode", "wardName", "bedNo", "doctorIdentityNo"):
        msg["messages"]["PV1"][k] = ""
    msg["messages"]["DG1"] = {"chiefCompliant": "", "diagCode": "", "diagName": ""}
    assert iface(specs, "HR01").validate_request(msg).valid


@pytest.mark.parametrize(
    ("name", "part", "path", "value", "wpath", "wrule"),
    [
        ("HR01", "request", "messages.EVN.eventTypeName", "互认查询", "messages.EVN.eventTypeName", "pattern"),
        ("HR01", "response", "messages.QAK.url", DROP, "messages.QAK.url", "required_if"),
        ("HR01", "response", "messages.QAK.url", "http://x/" + "u" * 100, "messages.QAK.url", "length"),
        ("HR02", "response", "messages.QAK.businessId", DROP, "messages.QAK.businessId", "required_if"),
        ("HR03", "response", "messages.QAK.result.lab[0].recognitionResult", "1", "messages.QAK.result.lab[0].recognitionResult", "code"),
        ("HR05", "response", "messages.QAK.flag", "true", "messages.QAK.flag", "code"),
    ],
)
def test_document_contradictions_are_warnings(specs: Any, name: str, part: str, path: str, value: Any, wpath: str, wrule: str) -> None:
    i = iface(specs, name)
    fn = i.validate_request if part == "request" else i.validate_response
    res = fn(mutate(example(specs, name, part), path, value))
    assert res.valid, res.errors
    assert (wpath, wrule) in {(w.path, w.rule) for w in res.warnings}


# (header mutations, expected path, rule); DROP removes the header
HEADER_MUTATIONS = [
    ({"authoritytype": DROP}, "headers.authoritytype", "required"),
    ({"authoritytype": "1"}, "headers.authoritytype", "code"),
    ({"access_token": DROP}, "headers.access_token", "required_if"),
    ({"authoritytype": "3", "access_token": DROP}, "headers.license", "required_if"),
    ({"signtype": "1"}, "headers.sign", "required_if"),
    ({"signtype": "3", "sign": "abc"}, "headers.signtype", "code"),
    ({"secrettype": "1"}, "headers.secretkey", "required_if"),
    ({"secrettype": DROP}, "headers.secrettype", "required"),
    ({"heartbeat": "2"}, "headers.heartbeat", "code"),
    ({"testmarker": DROP}, "headers.testmarker", "required"),
    ({"elementsVersion": DROP}, "headers.elementsVersion", "required"),
    ({"RAtimestamp": "1700000000000"}, "headers.RAnonce", "required_if"),
    ({"RAtimestamp": "1700000000000", "RAnonce": "5f0c5b1e-3a8e-4f7e-9a64-0d8b6f0e2c11"}, "headers.RAsignature", "required_if"),
    ({"RAtimestamp": "1700000000"}, "headers.RAtimestamp", "pattern"),
    ({"RAtimestamp": "1700000000000", "RAnonce": "nonce", "RAsignature": "s"}, "headers.RAnonce", "pattern"),
    ({"content-Type": "text/xml"}, "headers.content-Type", "pattern"),
]


def _headers(base: dict[str, str], changes: dict[str, Any]) -> dict[str, str]:
    out = dict(base)
    for k, v in changes.items():
        if v is DROP:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@pytest.mark.parametrize(("changes", "epath", "rule"), HEADER_MUTATIONS, ids=[m[1] + "-" + m[2] for m in HEADER_MUTATIONS])
@pytest.mark.parametrize("name", ["HR01", "HR03"])
def test_request_header_rules(specs: Any, name: str, changes: dict[str, Any], epath: str, rule: str) -> None:
    i = iface(specs, name)
    body = example(specs, name, "request")
    assert i.validate_request(body, headers=HEADERS).valid
    res = i.validate_request(body, headers=_headers(HEADERS, changes))
    assert (epath, rule) in rules(res), res.errors


@pytest.mark.parametrize(
    "hdrs",
    [
        {"authoritytype": "3", "license": "LIC-1", "secrettype": "0", "heartbeat": "0", "testmarker": "0", "elementsVersion": ""},
        {"authoritytype": "9", "secrettype": "0", "heartbeat": "0", "testmarker": "1", "elementsVersion": "1.00"},
        {
            "Authoritytype": "2",
            "Access_Token": "t",
            "SecretType": "1",
            "SecretKey": "wrapped",
            "Heartbeat": "0",
            "TestMarker": "0",
            "ElementsVersion": "1.00",
            "Content-Type": "application/json;charset=UTF-8",
        },
        {
            **HEADERS,
            "signtype": "1",
            "sign": "abc",
            "RAtimestamp": "1700000000000",
            "RAnonce": "5f0c5b1e3a8e4f7e9a640d8b6f0e2c11",
            "RAsignature": "sig",
            "inforouter": "SYS1,SYS2",
        },
    ],
)
def test_request_header_variants_accepted(specs: Any, hdrs: dict[str, str]) -> None:
    res = iface(specs, "HR05").validate_request(example(specs, "HR05", "request"), headers=hdrs)
    assert res.valid, res.errors


def test_response_headers(specs: Any) -> None:
    i = iface(specs, "HR02")
    body = example(specs, "HR02", "response")
    assert i.validate_response(body, headers=RESP_HEADERS).valid
    unknown_code = i.validate_response(body, headers={**RESP_HEADERS, "messagecode": "1125"})
    assert unknown_code.valid
    assert ("headers.messagecode", "code") in {(w.path, w.rule) for w in unknown_code.warnings}
    for changes, epath, rule in [
        ({"messagetext": DROP}, "headers.messagetext", "required"),
        ({"heartbeat": DROP}, "headers.heartbeat", "required"),
        ({"signtype": "1"}, "headers.sign", "required_if"),
        ({"signtype": "2", "sign": "x"}, "headers.signtype", "code"),
    ]:
        res = i.validate_response(body, headers=_headers(RESP_HEADERS, changes))
        assert (epath, rule) in rules(res), (changes, res.errors)


def test_token_call_has_its_own_headers(specs: Any) -> None:
    """The token call carries no envelope; its response headers are messagecode + messagetext only."""
    i = iface(specs, "accesstoken")
    assert i.headers is not None and "authoritytype" not in (i.headers.node.children or {})
    assert i.validate_request({"appId": "a", "appSecret": "s"}, headers={}).valid
    assert i.validate_response({"access_token": "t"}, headers={"messagecode": "1000", "messagetext": "ok"}).valid
    res = i.validate_response({}, headers={"messagecode": "1005"})
    assert ("headers.messagetext", "required") in rules(res)


def test_error_codes(specs: Any) -> None:
    plat = specs.platforms[P].platform
    errors = plat.errors
    assert len(errors) == 42
    assert errors["1000"].action == "ok"
    assert {c for c, e in errors.items() if e.action == "reauth"} >= {"1001", "1002", "1003"}
    assert errors["1121"].action == "wait" and errors["1126"].action == "wait"
    assert errors["1123"].action == "retry"
    assert errors["1005"].action == "fatal" and errors["1061"].action == "fatal"
    assert all(e.action in ("ok", "retry", "reauth", "wait", "fatal") and e.message for e in errors.values())
    table = specs.platforms[P].codes["messagecode"][0].values
    assert set(table) == set(errors)
    assert {c: (v if isinstance(v, str) else v.label) for c, v in table.items()} == {c: e.message for c, e in errors.items()}
    assert plat.success.header == "messagecode" and plat.success.in_ == ["1000"]
    assert plat.crypto is not None and plat.crypto.envelope is not None and plat.crypto.envelope.cipher == "sm4-cbc"


def test_auth(specs: Any) -> None:
    auth = specs.platforms[P].platform.auth
    assert auth.kind == "token" and auth.interface == "accesstoken"
    assert auth.lifetime_s == 24 * 3600
    assert auth.carry.in_ == "header" and auth.carry.name == "access_token"
    assert auth.token_path == "access_token"
    assert auth.credentials == ["appId", "appSecret"]
    token = iface(specs, "accesstoken").spec.binding.http
    assert token.method == "GET" and token.path == "/auth/accesstoken/create"


def _pick(data: Any, path: str) -> list[Any]:
    cur = [data]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part[:-2] if many else part
        cur = [c[key] for c in cur if isinstance(c, dict) and key in c]
        if many:
            cur = [x for c in cur for x in c]
    return cur


@pytest.mark.parametrize("name", IFACES)
def test_natural_keys_resolve_in_the_example(specs: Any, name: str) -> None:
    i = iface(specs, name)
    assert i.spec.key
    body = example(specs, name, "request")
    for path in i.spec.key:
        assert _pick(body, path), path


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("HR01", "/pmemr/productMutualRecognition/getCrossUrl"),
        ("HR02", "/pmemr/productMutualRecognition/checkApply"),
        ("HR03", "/pmemr/productMutualRecognition/getCheckInfo"),
        ("HR04", "/pmemr/productMutualRecognition/importApply"),
        ("HR05", "/pmemr/productMutualRecognition/getImportInfo"),
    ],
)
def test_bindings(specs: Any, name: str, path: str) -> None:
    http = iface(specs, name).spec.binding.http
    assert http.method == "POST" and http.path == path

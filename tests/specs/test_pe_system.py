"""pe_system (document 002): bindings as data, the document's examples validate, each rule kind fails
at the right path.

Bases below are written from the document's tables (it gives almost no request examples), independently of
the examples stored in the interface YAML; each mutation breaks exactly one thing.
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
PLATFORM = "pe_system"
DELETE = object()

# the exam system provides these (WebService 服务名 = id): (API path, view or None, procedure)
PROVIDED = {
    "his_notifyTradeStatus": ("/api/his/notifyTradeStatus", None, "cp_his_notifyTradeStatus"),
    "lis_getApplyInfo": ("/api/lis/getApplyInfo", "V_LIS_GetApplyInfo", "cp_lis_GetApplyInfo"),
    "lis_updateApplyStatus": ("/api/lis/updateApplyStatus", "V_LIS_ApplyInfo", "cp_lis_updateApplyStatus"),
    "lis_pubReport": ("/api/lis/pubReport", "V_LIS_RESULT", "cp_lis_pubReport"),
    "pacs_getApplyInfo": ("/api/pacs/getApplyInfo", "V_PACS_ApplyInfo", "cp_pacs_GetApplyInfo"),
    "pacs_updateApplyStatus": ("/api/pacs/updateApplyStatus", "V_PACS_ApplyInfo", "cp_pacs_updateApplyStatus"),
    "pacs_pubReport": ("/api/pacs/pubReport", "V_PACS_RESULT", "cp_pacs_pubReport"),
}
# partner-provided, contract only (no 服务名, no binding): snake_case ids
CONTRACT_ONLY = [
    "his_get_patient_info",
    "his_create_patient",
    "his_update_patient",
    "his_register",
    "his_send_charge",
    "his_cancel_charge",
    "his_send_refund",
    "his_query_trade_status",
    "his_sync_departments",
    "his_sync_staff",
    "his_sync_combo_items",
    "his_sync_fee_items",
    "his_sync_combo_fee_map",
    "lis_get_results",
    "pacs_get_results",
]
INTERFACES = sorted([*PROVIDED, *CONTRACT_ONLY])


@pytest.fixture(scope="module")
def specs() -> Any:
    return load_specs(ROOT / "specs", strict=False)


def iface(specs: Any, name: str) -> Any:
    return specs.interface(f"{PLATFORM}/{name}")


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def mutate(msg: Any, path: str, value: Any) -> Any:
    """Set (or delete, with DELETE) the value at `a.b[2].c` of a copy of msg."""
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


# -- bases from the document's tables ------------------------------------------------------------------

PATIENT = {"PatientName": "张三", "PatientSex": "男", "PatientIDCardNum": "110101199003071234", "PatientBirthday": "1990-03-07"}
TRADE = {"PECardNum": "T1", "PatientID": "H1", "RegNo": "R1", "TradeCode": "TR1"}
OK = {"status": 0, "message": ""}
LIS_ORDER = {
    "peCardnum": "T1",
    "customerName": "张三",
    "customerBirthday": "1990-03-07",
    "customerSex": "男",
    "customerTele": "138",
    "remarkInfo": "",
    "applyNo": 1,
    "barCode": "B1",
    "itemCode": "L1",
    "itemName": "血常规",
    "exePrice": "1",
    "fullPrice": "1",
    "Applydoctor": "王",
    "applydepartment": "体检",
}
PACS_ORDER = {
    "peCardnum": "T1",
    "IDCardnum": "110101199003071234",
    "customerName": "张三",
    "customerBirthday": "1990-03-07",
    "customerSex": "男",
    "customerTele": "138",
    "remarkInfo": "",
    "applyNo": 2,
    "itemCode": "P1",
    "itemName": "胸部CT",
    "exePrice": "1",
    "fullPrice": "1",
    "Applydoctor": "王",
    "applydepartment": "体检",
    "deptCode": "D20",
}
LIS_RESULT = {
    "RepNo": "R1",
    "PECardNum": "T1",
    "BarCode": "B1",
    "ApplyNo": "1",
    "ItemCode": "L1",
    "ExamItemID": "WBC",
    "ExamValue": "5",
    "ResultType": "M",
    "ResultDangerLevel": "0",
    "ResultScope": "3.5-9.5",
    "ResultUnit": "10^9/L",
    "ResultIndex": "1",
    "ReportDoc": "赵",
    "ReportTime": "2022-03-11 10:00:00",
    "ReviewDoc": "钱",
    "ReviewTime": "2022-03-11 10:30:00",
}


def camel(row: dict[str, Any]) -> dict[str, Any]:
    """The [供体检调用] tables repeat the push tables in camelCase (PECardNum -> peCardNum)."""
    return {("peCardNum" if k == "PECardNum" else k[0].lower() + k[1:]): v for k, v in row.items()}


LIS_ROW = camel(LIS_RESULT)
PACS_REPORT = {
    "RepNo": "P1",
    "PECardNum": "T1",
    "BarCode": "B2",
    "ApplyNo": "2",
    "ItemCode": "P1",
    "ItemName": "胸部CT",
    "Findings": "未见异常",
    "ResultType": "M",
    "ResultDangerLevel": "0",
    "ReportDoc": "孙",
    "ReportTime": "t",
    "ReviewDoc": "周",
    "ReviewTime": "t",
}
PACS_ROW = camel(PACS_REPORT)

BASES: dict[str, tuple[Any, Any]] = {  # interface -> (request, response)
    "his_get_patient_info": ({"filterKey": "110101199003071234", "filterType": 1}, {"PatientID": "H1", **PATIENT}),
    "his_create_patient": ({"InnerPatientID": "PE1", **PATIENT}, {**OK, "data": {"PatientID": "H1"}}),
    "his_update_patient": ({"PatientID": "H1", "InnerPatientID": "PE1", **PATIENT}, OK),
    "his_register": ({"PatientID": "H1", "PECardNum": "T1"}, {**OK, "data": {"regNo": "1"}}),
    "his_send_charge": (
        {
            **TRADE,
            "HisItemCode": "F1",
            "HisItemName": "血常规",
            "ExecPrice": 18.5,
            "OriginalPrice": 20,
            "PriceDiscount": 0.925,
            "ExecDeptCode": "D1",
            "ApplyDeptCode": "D9",
            "ApplyDocCode": "DOC1",
            "ApplyTime": "2022-03-11 09:30:00",
        },
        {**OK, "data": {"PresID": "P1"}},
    ),
    "his_cancel_charge": (TRADE, OK),
    "his_send_refund": ({**TRADE, "HisItemCode": "F1"}, OK),
    "his_query_trade_status": (TRADE, {**OK, "data": {"tradeStatus": 11}}),
    "his_notifyTradeStatus": ({"PECardNum": "T1", "PatientID": "H1", "TradeCode": "TR1"}, OK),
    "his_sync_departments": ({"FilterKey": "内"}, {**OK, "data": [{"deptCode": "D1", "deptName": "内科"}]}),
    "his_sync_staff": ({"FilterKey": "", "DeptCode": "D1"}, {**OK, "data": [{"deptCode": "D1", "doctorCode": "E1", "doctorName": "李"}]}),
    "his_sync_combo_items": (
        {"DeptCode": "D1", "ItemType": "检验"},
        {**OK, "data": [{"deptCode": "D1", "itemType": "检验", "itemCode": "C1", "itemName": "肝功能", "itemPrice": "45.00"}]},
    ),
    "his_sync_fee_items": ({}, {**OK, "data": [{"feeCode": "F1", "feePrice": "18.50"}]}),
    "his_sync_combo_fee_map": ({}, {**OK, "data": [{"itemCode": "C1", "feeItemCode": "F1", "feeItemCount": "2"}]}),
    "lis_getApplyInfo": ({"BarCode": "B1"}, {**OK, "data": [LIS_ORDER, LIS_ORDER]}),
    "lis_updateApplyStatus": ({"BarCode": "B1", "SampleStatus": "12"}, OK),
    "lis_pubReport": (LIS_RESULT, OK),
    "lis_get_results": ({"anyKey": "B1"}, [LIS_ROW, {**LIS_ROW, "examItemID": "RBC", "ImagePath": "r/1.png"}]),
    "pacs_getApplyInfo": ({"PECardNum": "T1", "SysCode": "GMS"}, {**OK, "data": [PACS_ORDER]}),
    "pacs_updateApplyStatus": ({"PECardNum": "T1", "ItemCode": "P1", "ApplyStatus": "21"}, OK),
    "pacs_pubReport": (PACS_REPORT, OK),
    "pacs_get_results": ({}, [PACS_ROW]),
}

# -- the spec tree --------------------------------------------------------------------------------------


def test_platform_loads_without_errors(specs: Any) -> None:
    mine = [f for f in specs.findings if f"platforms/{PLATFORM}/" in str(f.file).replace("\\", "/")]
    assert [str(f) for f in mine if f.severity == "error"] == []


def test_every_interface_of_the_document(specs: Any) -> None:
    assert sorted(specs.platforms[PLATFORM].interfaces) == INTERFACES
    assert sorted(BASES) == INTERFACES


@pytest.mark.parametrize("name", sorted(PROVIDED))
def test_exam_system_interfaces_carry_all_their_bindings(specs: Any, name: str) -> None:
    path, view, proc = PROVIDED[name]
    b = iface(specs, name).spec.binding
    assert (b.http.method, b.http.path, b.http.content_type) == ("POST", path, "application/json")
    assert b.soap.operation == "CallInterface"
    assert b.soap.select == {"msgHeader.serverName": name}  # the WebService 服务名 is the interface id
    assert (b.view.name if b.view else None) == view
    assert b.procedure.name == proc
    assert b.procedure.outputs == ["execStatus", "errMessage"]  # 存储过程在结尾统一加入出参
    # the procedure's inputs are the request fields, in table order
    assert b.procedure.inputs == list(iface(specs, name).request.node.children)


@pytest.mark.parametrize("name", CONTRACT_ONLY)
def test_partner_provided_interfaces_have_no_fixed_binding(specs: Any, name: str) -> None:
    spec = iface(specs, name).spec
    assert spec.binding is None
    assert "snake_case" in spec.note


def test_soap_call_interface_envelope(specs: Any) -> None:
    plat = specs.platforms[PLATFORM]
    t = plat.platform.transport
    assert t.soap_service == "WSInterface"
    assert list(t.soap_params) == ["msgHeader", "msgBody"]
    assert t.soap_params["msgHeader"].use == "msg_header" and t.soap_params["msgHeader"].carried_as == "xml"
    assert t.soap_body_param == "msgBody"
    header = plat.groups["msg_header"][0].fields
    assert list(header) == ["serverName", "callOperator", "certificate", "sendTime", "sendCount"]
    assert header["sendTime"].format == "yyyy-MM-dd HH:mm:ss"
    assert not header["callOperator"].required  # 调用操作者（可为空）


def test_success_and_status_codes(specs: Any) -> None:
    plat = specs.platforms[PLATFORM].platform
    assert plat.success.field == "status" and plat.success.in_ == ["0", "1"]
    assert {c: e.action for c, e in plat.errors.items()} == {"-1": "fatal", "0": "ok", "1": "ok"}
    assert plat.crypto is None
    assert plat.auth.kind == "credential" and plat.auth.carry.name == "msgHeader.certificate"
    codes = specs.platforms[PLATFORM].codes
    assert list(codes["status"][0].values) == list(codes["exec_status"][0].values) == ["-1", "0", "1"]


def test_code_table_counts_match_document(specs: Any) -> None:
    codes = specs.platforms[PLATFORM].codes
    rows = (ROOT / "tests/fields/pe_system.codes.tsv").read_text(encoding="utf-8").split("\n")
    want = {t: int(n) for t, n in (r.split("\t") for r in rows if r.strip())}
    assert {cid: len(t.values) for cid, (t, _) in codes.items()} == want


def test_view_status_mapping_is_documented(specs: Any) -> None:
    """Every write-back code maps to a view checkStatus, except SampleStatus 12 (已上机), which has none."""
    codes = specs.platforms[PLATFORM].codes
    for view_table, status_table, unmapped in (("lis_check_status", "sample_status", {"12"}), ("pacs_check_status", "apply_status", set())):
        mapped = set()
        for v in codes[view_table][0].values.values():
            mapped |= set(re.findall(r"\b\d\d\b", v.note))
        assert mapped == set(codes[status_table][0].values) - unmapped


# -- examples -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INTERFACES)
def test_yaml_examples(specs: Any, name: str) -> None:
    ci = iface(specs, name)
    assert ci.spec.examples, f"{name} has no examples"
    for ex in ci.spec.examples:
        validate = ci.validate_request if ex.part == "request" else ci.validate_response
        res = validate(ex.body, ex.headers)
        if ex.valid:
            assert res.valid, (ex.name, [(e.path, e.rule, e.message) for e in res.errors])
        else:
            assert not res.valid, ex.name
            assert {(e["path"], e["rule"]) for e in ex.errors} <= findings(res), (ex.name, findings(res))


@pytest.mark.parametrize("name", INTERFACES)
def test_bases_validate_as_objects_and_on_the_wire(specs: Any, name: str) -> None:
    ci = iface(specs, name)
    req, rsp = BASES[name]
    for validate, msg in ((ci.validate_request, req), (ci.validate_response, rsp)):
        assert validate(msg).valid, (name, [(e.path, e.rule, e.message) for e in validate(msg).errors])
        assert validate(json.dumps(msg, ensure_ascii=False).encode("utf-8")).valid


def test_generic_return_format_as_printed_is_not_json(specs: Any) -> None:
    printed = '{\n"status":0,//state枚举\n"message":"",//返回异常信息\n"data":[]//返回数据实体\n}'
    ci = iface(specs, "lis_getApplyInfo")
    assert ("$", "parse") in findings(ci.validate_response(printed))
    cleaned = re.sub(r"//[^\n]*", "", printed)
    assert ci.validate_response(cleaned).valid


# -- one mutation per rule kind each interface uses --------------------------------------------------------

REQ, RSP = "request", "response"
MUTATIONS = [
    # (interface, part, path, bad value, expected path, expected rule)
    ("his_get_patient_info", REQ, "filterType", 3, "filterType", "code"),
    ("his_get_patient_info", REQ, "filterType", "1", "filterType", "type"),
    ("his_get_patient_info", REQ, "filterKey", DELETE, "filterKey", "required"),
    ("his_get_patient_info", REQ, "filterKey", "", "filterKey", "empty"),
    ("his_get_patient_info", RSP, "PatientID", DELETE, "PatientID", "required"),
    ("his_get_patient_info", RSP, "status", 0, "status", "unknown"),  # flat output, no wrapper
    ("his_create_patient", REQ, "InnerPatientID", DELETE, "InnerPatientID", "required"),
    ("his_create_patient", REQ, "PatientSex", None, "PatientSex", "required"),
    ("his_create_patient", RSP, "data.PatientID", DELETE, "data.PatientID", "required"),
    ("his_create_patient", RSP, "status", "0", "status", "type"),
    ("his_create_patient", RSP, "message", 0, "message", "type"),
    ("his_update_patient", REQ, "PatientID", DELETE, "PatientID", "required"),
    ("his_update_patient", REQ, "PatientTele", 13800000000, "PatientTele", "type"),
    ("his_update_patient", RSP, "status", -2, "status", "code"),
    ("his_update_patient", RSP, "message", DELETE, "message", "required"),
    ("his_register", REQ, "PECardNum", DELETE, "PECardNum", "required"),
    ("his_register", RSP, "data", [{"regNo": "1"}], "data", "type"),
    ("his_register", RSP, "data.regNo", DELETE, "data.regNo", "required"),
    ("his_send_charge", REQ, "ExecPrice", "十八", "ExecPrice", "type"),
    ("his_send_charge", REQ, "ApplyTime", DELETE, "ApplyTime", "required"),
    ("his_send_charge", REQ, "RegNo", DELETE, "RegNo", "required"),
    ("his_send_charge", RSP, "data.PresID", DELETE, "data.PresID", "required"),
    ("his_cancel_charge", REQ, "TradeCode", DELETE, "TradeCode", "required"),
    ("his_cancel_charge", REQ, "HisItemCode", "F1", "HisItemCode", "unknown"),
    ("his_cancel_charge", RSP, "status", 2, "status", "code"),
    ("his_send_refund", REQ, "PatientID", DELETE, "PatientID", "required"),
    ("his_send_refund", REQ, "HisItemCode", 1, "HisItemCode", "type"),
    ("his_send_refund", RSP, "status", DELETE, "status", "required"),
    ("his_query_trade_status", REQ, "PECardNum", DELETE, "PECardNum", "required"),
    ("his_query_trade_status", RSP, "data.tradeStatus", 12, "data.tradeStatus", "code"),
    ("his_query_trade_status", RSP, "data.tradeStatus", "11", "data.tradeStatus", "type"),
    ("his_notifyTradeStatus", REQ, "TradeCode", DELETE, "TradeCode", "required"),
    ("his_notifyTradeStatus", REQ, "PatientID", 1, "PatientID", "type"),
    ("his_notifyTradeStatus", RSP, "status", 5, "status", "code"),
    ("his_notifyTradeStatus", RSP, "data", {"x": 1}, "data", "type"),
    ("his_sync_departments", REQ, "FilterKey", 1, "FilterKey", "type"),
    ("his_sync_departments", RSP, "data[0].deptName", DELETE, "data[0].deptName", "required"),
    ("his_sync_departments", RSP, "data", [], "data", "cardinality"),
    ("his_sync_staff", REQ, "deptCode", "D1", "deptCode", "unknown"),  # the input is DeptCode
    ("his_sync_staff", RSP, "data[0].doctorCode", DELETE, "data[0].doctorCode", "required"),
    ("his_sync_staff", RSP, "data", DELETE, "data", "required"),
    ("his_sync_combo_items", REQ, "ItemType", 1, "ItemType", "type"),
    ("his_sync_combo_items", RSP, "data[0].itemPrice", 45, "data[0].itemPrice", "type"),
    ("his_sync_combo_items", RSP, "data[0].itemType", DELETE, "data[0].itemType", "required"),
    ("his_sync_fee_items", REQ, "FilterKey", ["a"], "FilterKey", "type"),
    ("his_sync_fee_items", RSP, "data[0].feeCode", DELETE, "data[0].feeCode", "required"),
    ("his_sync_fee_items", RSP, "data", {"feeCode": "F1", "feePrice": "1"}, "data", "type"),
    ("his_sync_combo_fee_map", REQ, "filterKey", "C1", "filterKey", "unknown"),
    ("his_sync_combo_fee_map", RSP, "data[0].feeItemCount", 2, "data[0].feeItemCount", "type"),
    ("his_sync_combo_fee_map", RSP, "data", [], "data", "cardinality"),
    ("lis_getApplyInfo", REQ, "BarCode", DELETE, "BarCode", "required"),
    ("lis_getApplyInfo", REQ, "barCode", "B1", "barCode", "unknown"),
    ("lis_getApplyInfo", RSP, "data[1].applyNo", "1", "data[1].applyNo", "type"),
    ("lis_getApplyInfo", RSP, "data[0].Applydoctor", DELETE, "data[0].Applydoctor", "required"),
    ("lis_getApplyInfo", RSP, "data[0].customerTele", "", "data[0].customerTele", "empty"),
    ("lis_getApplyInfo", RSP, "data[0].peCardNum", "T1", "data[0].peCardNum", "unknown"),  # the document writes peCardnum
    ("lis_updateApplyStatus", REQ, "SampleStatus", "13", "SampleStatus", "code"),
    ("lis_updateApplyStatus", REQ, "SampleStatus", 10, "SampleStatus", "type"),
    ("lis_updateApplyStatus", REQ, "SampleStatus", DELETE, "SampleStatus", "required"),
    ("lis_updateApplyStatus", REQ, "checkStatus", "1", "checkStatus", "unknown"),  # view column, not an API field
    ("lis_updateApplyStatus", RSP, "status", "0", "status", "type"),
    ("lis_pubReport", REQ, "ResultType", "N", "ResultType", "code"),
    ("lis_pubReport", REQ, "ResultDangerLevel", "3", "ResultDangerLevel", "code"),
    ("lis_pubReport", REQ, "ExamItemID", DELETE, "ExamItemID", "required"),
    ("lis_pubReport", REQ, "ReviewTime", None, "ReviewTime", "required"),
    ("lis_pubReport", REQ, "ExamValue", 5.1, "ExamValue", "type"),
    ("lis_pubReport", RSP, "status", 9, "status", "code"),
    ("lis_get_results", RSP, "[1].resultType", "X", "[1].resultType", "code"),
    ("lis_get_results", RSP, "[0].repNo", DELETE, "[0].repNo", "required"),
    ("lis_get_results", RSP, "[0].imagePath", "x", "[0].imagePath", "unknown"),
    ("pacs_getApplyInfo", REQ, "SysCode", "MRI", "SysCode", "code"),
    ("pacs_getApplyInfo", REQ, "PECardNum", DELETE, "PECardNum", "required"),
    ("pacs_getApplyInfo", RSP, "data[0].IDCardnum", DELETE, "data[0].IDCardnum", "required"),
    ("pacs_getApplyInfo", RSP, "data[0].checkParts", "胸部", "data[0].checkParts", "unknown"),  # checkPart here
    ("pacs_getApplyInfo", RSP, "data[0].applyNo", 2.5, "data[0].applyNo", "type"),
    ("pacs_updateApplyStatus", REQ, "ApplyStatus", "12", "ApplyStatus", "code"),
    ("pacs_updateApplyStatus", REQ, "ApplyStatus", DELETE, "ApplyStatus", "required"),
    ("pacs_updateApplyStatus", REQ, "ApplyNo", 2, "ApplyNo", "type"),
    ("pacs_updateApplyStatus", RSP, "message", None, "message", "required"),
    ("pacs_pubReport", REQ, "Findings", DELETE, "Findings", "required"),
    ("pacs_pubReport", REQ, "SysCode", "CT", "SysCode", "code"),
    ("pacs_pubReport", REQ, "ResultDangerLevel", 2, "ResultDangerLevel", "type"),
    ("pacs_pubReport", REQ, "Findings", "", "Findings", "empty"),
    ("pacs_pubReport", RSP, "status", DELETE, "status", "required"),
    ("pacs_get_results", RSP, "[0].findings", DELETE, "[0].findings", "required"),
    ("pacs_get_results", RSP, "[0].resultDangerLevel", "9", "[0].resultDangerLevel", "code"),
    ("pacs_get_results", RSP, "[0].sysCode", "RIS", "[0].sysCode", "unknown"),
]


@pytest.mark.parametrize(
    ("name", "part", "path", "value", "want_path", "rule"), MUTATIONS, ids=[f"{m[0]}-{m[1]}-{m[2]}-{m[5]}" for m in MUTATIONS]
)
def test_mutation_fails_with_rule_at_path(specs: Any, name: str, part: str, path: str, value: Any, want_path: str, rule: str) -> None:
    ci = iface(specs, name)
    req, rsp = BASES[name]
    base = req if part == REQ else rsp
    validate = ci.validate_request if part == REQ else ci.validate_response
    res = validate(mutate(base, path, value))
    assert not res.valid
    assert (want_path, rule) in findings(res), findings(res)
    # the same message on the wire gives the same findings
    wire = json.dumps(mutate(base, path, value), ensure_ascii=False).encode("utf-8")
    assert findings(validate(wire)) == findings(res)


def test_every_interface_has_mutations_for_each_part_it_defines() -> None:
    covered = {(m[0], m[1]) for m in MUTATIONS}
    for name in BASES:
        assert (name, RSP) in covered, name
        if name not in ("lis_get_results", "pacs_get_results"):  # no input defined: any query key is accepted
            assert (name, REQ) in covered, name


def test_optional_rows_with_shifted_columns_may_be_absent(specs: Any) -> None:
    """Rows whose 非空 cell is empty in the source (columns shifted) are optional."""
    ci = iface(specs, "lis_pubReport")
    for f in ("ItemName", "ExamItemName", "ExamDesc", "ResultReferHigh", "ResultReferLow", "ImagePath"):
        assert not ci.request.node.children[f].required, f
    assert ci.validate_request({**LIS_RESULT, "ResultScope": "", "ResultUnit": ""}).valid  # qualitative result

"""xinjiang_mr (document 001): SOAP Myhealth payloads, PACS views, examples, mutation table, payload selection."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from engine.spec import load_specs

ROOT = Path(__file__).resolve().parents[2]
P = "xinjiang_mr"
SOAP_OPS = {
    "ArchiveAutoReport.lab": "ArchiveAutoReport",
    "ArchiveAutoReport.exam": "ArchiveAutoReport",
    "ArchiveAutoReport.daily": "ArchiveAutoReport",
    "DeleteLabInfo": "DeleteLabInfo",
    "DeleteExamInfo": "DeleteExamInfo",
    "GetCheckLabList": "GetCheckLabList",
    "GetCheckLabInfo": "GetCheckLabInfo",
    "ExistsReCureInfo": "ExistsReCureInfo",
    "GetLabInfo": "GetLabInfo",
    "GetExamInfo": "GetExamInfo",
    "SubmitAccept": "SubmitAccept",
    "SubmitQuote": "SubmitQuote",
}
VIEWS = {"v_web_jcjg": "v_web_jcjg", "v_web_jctj": "v_web_jctj"}
WRITES = [
    "ArchiveAutoReport.lab",
    "ArchiveAutoReport.exam",
    "ArchiveAutoReport.daily",
    "DeleteLabInfo",
    "DeleteExamInfo",
    "SubmitAccept",
    "SubmitQuote",
]
QUERIES = ["GetCheckLabList", "GetCheckLabInfo", "ExistsReCureInfo", "GetLabInfo", "GetExamInfo"]
DROP = object()  # mutation: remove the attribute / element
CLEAR = object()  # mutation: remove every child of the element


@pytest.fixture(scope="module")
def specs() -> Any:
    # strict=False: other platforms' work in progress must not hide this platform's findings
    return load_specs(ROOT / "specs", strict=False)


def iface(specs: Any, name: str) -> Any:
    return specs.interface(f"{P}/{name}")


def example(specs: Any, name: str, part: str = "request") -> Any:
    """The document's example: the first valid example of that part, deep-copied."""
    for ex in iface(specs, name).spec.examples:
        if ex.part == part and ex.valid:
            return copy.deepcopy(ex.body)
    raise LookupError(name, part)


def mutate_xml(xml: str, xpath: str, attr: str | None, value: Any) -> str:
    """Change one attribute (attr) or the text of one element (attr None) of an XML string."""
    root = etree.fromstring(xml.encode("utf-8"))
    found = root.xpath(xpath)
    assert found, f"{xpath} matches nothing"
    el = found[0]
    if value is CLEAR:
        for c in list(el):
            el.remove(c)
    elif attr is None:
        if value is DROP:
            el.getparent().remove(el)
        else:
            el.text = value
    elif value is DROP:
        del el.attrib[attr]
    else:
        el.set(attr, value)
    return etree.tostring(root, encoding="unicode")


def rules(res: Any) -> set[tuple[str, str]]:
    return {(e.path, e.rule) for e in res.errors}


def warn_rules(res: Any) -> set[tuple[str, str]]:
    return {(w.path, w.rule) for w in res.warnings}


# -- the platform as a whole ---------------------------------------------------------------------


def test_platform_has_no_findings(specs: Any) -> None:
    mine = [str(f) for f in specs.errors if f"platforms/{P}/" in str(f)]
    assert mine == []


def test_every_operation_and_view_has_an_interface(specs: Any) -> None:
    ps = specs.platforms[P]
    assert set(ps.interfaces) == set(SOAP_OPS) | set(VIEWS)
    for name, op in SOAP_OPS.items():
        b = iface(specs, name).spec.binding
        assert b.soap is not None and b.soap.operation == op, name
        assert iface(specs, name).spec.request.format == "soap"
    for name, view in VIEWS.items():
        spec = iface(specs, name).spec
        assert spec.binding.view is not None and spec.binding.view.name == view
        assert spec.request.format == "row"


def test_transport_auth_and_no_crypto(specs: Any) -> None:
    plat = specs.platforms[P].platform
    assert plat.transport.kind == "soap"
    assert plat.transport.soap_service == "Myhealth"
    assert plat.crypto is not None and plat.crypto.envelope is not None and plat.crypto.envelope.cipher == "sm4-ecb"
    assert plat.auth.kind == "credential"
    assert plat.auth.carry.name == "strCredential"
    assert plat.success.prefix == "ok"


@pytest.mark.parametrize("name", list(SOAP_OPS))
def test_soap_parameters_in_document_order(specs: Any, name: str) -> None:
    params = list(iface(specs, name).spec.request.fields)
    first = "strFilter" if name.startswith(("Delete", "Get", "Exists")) else "strReportInfo"
    assert params == [first, "strCredential", "strKey"]
    fields = iface(specs, name).spec.request.fields
    assert fields[first].encrypted and fields["strCredential"].encrypted  # SM4-ECB on the wire


def test_write_operations_have_natural_keys_reads_do_not(specs: Any) -> None:
    for name in WRITES:
        assert iface(specs, name).spec.key, name
    for name in QUERIES:
        assert not iface(specs, name).spec.key, name
    assert iface(specs, "SubmitAccept").spec.key == [
        "strReportInfo.sehr_accept_record[].hr_org_code",
        "strReportInfo.sehr_accept_record[].hr_report_form_no",
        "strReportInfo.sehr_accept_record[].code",
        "strReportInfo.sehr_accept_record[].new_event_no",
    ]


def test_code_tables_are_complete(specs: Any) -> None:
    codes = specs.platforms[P].codes
    assert len(codes["std_dept"][0].values) == 174
    assert len(codes["std_specimen_determiner"][0].values) == 54
    assert len(codes["modality"][0].values) == 20
    reasons = codes["non_recognition_reason"][0].values
    assert list(reasons) == [str(i) for i in range(1, 11)]  # code 10 is the document's very last line
    assert "A04.01.01" in codes["std_dept"][0].values and "A69" in codes["std_dept"][0].values
    assert next(iter(codes["std_id_type"][0].values)) == "01"  # codes stay verbatim strings


# -- the ArchiveAutoReport overload ------------------------------------------------------------


def test_select_picks_exactly_one_payload(specs: Any) -> None:
    names = ["ArchiveAutoReport.lab", "ArchiveAutoReport.exam", "ArchiveAutoReport.daily"]
    selects = {n: iface(specs, n).spec.binding.soap.select for n in names}
    for sel in selects.values():
        ((path, want),) = sel.items()
        assert path.startswith("strReportInfo.") and want == "*"  # "*": the element is present
    for payload_of in names:
        doc = etree.fromstring(example(specs, payload_of)["strReportInfo"].encode("utf-8"))
        present = {f"strReportInfo.{etree.QName(c).localname}" for c in doc}
        hits = [n for n, sel in selects.items() if set(sel) <= present]
        assert hits == [payload_of]


@pytest.mark.parametrize(
    "payload_of,other", [("ArchiveAutoReport.exam", "ArchiveAutoReport.lab"), ("ArchiveAutoReport.lab", "ArchiveAutoReport.daily")]
)
def test_payload_of_another_variant_fails(specs: Any, payload_of: str, other: str) -> None:
    res = iface(specs, other).validate_request(example(specs, payload_of))
    assert not res.valid


# -- examples (also run by `specbridge check`) -----------------------------------------------------


def _examples(specs_root: Path) -> list[tuple[str, int]]:
    s = load_specs(specs_root, strict=False)
    return [(n, i) for n, c in s.platforms[P].interfaces.items() for i in range(len(c.spec.examples or []))]


@pytest.mark.parametrize("name,idx", _examples(ROOT / "specs"))
def test_examples(specs: Any, name: str, idx: int) -> None:
    it = iface(specs, name)
    ex = it.spec.examples[idx]
    res = (it.validate_request if ex.part == "request" else it.validate_response)(ex.body)
    if ex.valid:
        assert res.valid, [(e.path, e.rule, e.message) for e in res.errors]
    else:
        want = {(e["path"], e["rule"]) for e in ex.errors or []}
        assert not res.valid
        assert want <= rules(res), rules(res)


# -- mutation table: one bad value against the document's example, the finding it must give ------

LAB_M, LAB_S = "labmaster/item[1]", "lab_subitem/item[2]"
EXAM_M, EXAM_S = "exammaster/item[1]", "exam_subitem/item[1]"
R = "strReportInfo"
F = "strFilter"
LM, SA, SQ = "strReportInfo.labmaster[0]", "strReportInfo.sehr_accept_record[0]", "strReportInfo.sehr_quote_record[0]"
MUTATIONS: list[tuple[str, str, str, str | None, Any, str, str]] = [
    # (interface, parameter, xpath, attribute or None for element text, value, path, rule)
    ("ArchiveAutoReport.lab", R, LAB_M, "org_code", DROP, "strReportInfo.labmaster[0].org_code", "required"),
    ("ArchiveAutoReport.lab", R, LAB_M, "name", "", "strReportInfo.labmaster[0].name", "empty"),
    ("ArchiveAutoReport.lab", R, LAB_M, "report_title", "常规报告" * 22, "strReportInfo.labmaster[0].report_title", "length"),
    ("ArchiveAutoReport.lab", R, LAB_M, "sex_name", "男" * 43, "strReportInfo.labmaster[0].sex_name", "length"),  # 129 bytes
    ("ArchiveAutoReport.lab", R, LAB_M, "authenticator_dtime", "2024-03-11T09:28:59", f"{LM}.authenticator_dtime", "format"),
    ("ArchiveAutoReport.lab", R, LAB_M, "effective_dtime", "2024-02-30 08:09:38", "strReportInfo.labmaster[0].effective_dtime", "format"),
    ("ArchiveAutoReport.lab", R, LAB_M, "retrieve_date", "2024-3-11", "strReportInfo.labmaster[0].retrieve_date", "pattern"),
    ("ArchiveAutoReport.lab", R, LAB_M, "event_type", "6", "strReportInfo.labmaster[0].event_type", "code"),
    ("ArchiveAutoReport.lab", R, LAB_M, "id_type_code", "1", "strReportInfo.labmaster[0].id_type_code", "code"),
    ("ArchiveAutoReport.lab", R, LAB_M, "sex_code", "M", "strReportInfo.labmaster[0].sex_code", "code"),
    ("ArchiveAutoReport.lab", R, LAB_M, "order_priority", "T", "strReportInfo.labmaster[0].order_priority", "code"),
    ("ArchiveAutoReport.lab", R, LAB_M, "specimen_determiner_code", "LX", "strReportInfo.labmaster[0].specimen_determiner_code", "code"),
    ("ArchiveAutoReport.lab", R, LAB_M, "data_status", "x", "strReportInfo.labmaster[0].data_status", "type"),
    ("ArchiveAutoReport.lab", R, LAB_M, "data_status", "10", "strReportInfo.labmaster[0].data_status", "range"),
    ("ArchiveAutoReport.lab", R, LAB_M, "pdf", "JVBERi0x%", "strReportInfo.labmaster[0].pdf", "format"),
    ("ArchiveAutoReport.lab", R, LAB_S, "serial_no", "4.5", "strReportInfo.lab_subitem[1].serial_no", "type"),
    ("ArchiveAutoReport.lab", R, LAB_S, "recognition", "2", "strReportInfo.lab_subitem[1].recognition", "code"),
    ("ArchiveAutoReport.lab", R, LAB_S, "result_interpre", "NEG", "strReportInfo.lab_subitem[1].result_interpre", "code"),
    ("ArchiveAutoReport.lab", R, LAB_S, "result_type", DROP, "strReportInfo.lab_subitem[1].result_type", "required"),
    ("ArchiveAutoReport.lab", R, LAB_S, "norm_value_notes", "注" * 1334, "strReportInfo.lab_subitem[1].norm_value_notes", "length"),
    ("ArchiveAutoReport.lab", R, "lab_subitem", None, CLEAR, "strReportInfo.lab_subitem", "cardinality"),
    ("ArchiveAutoReport.lab", "strCredential", "visitor", "code", DROP, "strCredential.visitor.code", "required"),
    ("ArchiveAutoReport.lab", "strCredential", "org", "code", DROP, "strCredential.org.code", "required"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "state", "5", "strReportInfo.exammaster[0].state", "code"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "state", DROP, "strReportInfo.exammaster[0].state", "required"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "is_abnormal", "3", "strReportInfo.exammaster[0].is_abnormal", "code"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "checked_status", "Y", "strReportInfo.exammaster[0].checked_status", "code"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "birth_date", "19670201", "strReportInfo.exammaster[0].birth_date", "format"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "arrive_dtime", "2024-05-11 8:17:34", "strReportInfo.exammaster[0].arrive_dtime", "format"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "study_instance_uid", "1." * 257, "strReportInfo.exammaster[0].study_instance_uid", "length"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "conclusion", "炎" * 1334, "strReportInfo.exammaster[0].conclusion", "length"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "pacs_url", DROP, "strReportInfo.exammaster[0].pacs_url", "required"),
    ("ArchiveAutoReport.exam", R, EXAM_M, "data_status", "1.0.1", "strReportInfo.exammaster[0].data_status", "type"),
    ("ArchiveAutoReport.exam", R, EXAM_S, "exam_item_code", DROP, "strReportInfo.exam_subitem[0].exam_item_code", "required"),
    ("ArchiveAutoReport.exam", R, EXAM_S, "recognition", "Y", "strReportInfo.exam_subitem[0].recognition", "code"),
    ("ArchiveAutoReport.exam", R, EXAM_S, "effective_dtime", "", "strReportInfo.exam_subitem[0].effective_dtime", "empty"),
    ("ArchiveAutoReport.exam", R, "exammaster", None, CLEAR, "strReportInfo.exammaster", "cardinality"),
    ("ArchiveAutoReport.daily", R, "lab_exam_report/item[1]", "lab_num", "-1", "strReportInfo.lab_exam_report[0].lab_num", "range"),
    ("ArchiveAutoReport.daily", R, "lab_exam_report/item[2]", "exam_num", "10000", "strReportInfo.lab_exam_report[1].exam_num", "range"),
    ("ArchiveAutoReport.daily", R, "lab_exam_report/item[1]", "exam_num", "7.5", "strReportInfo.lab_exam_report[0].exam_num", "type"),
    ("ArchiveAutoReport.daily", R, "lab_exam_report/item[1]", "date_t", "2024/05/29", "strReportInfo.lab_exam_report[0].date_t", "format"),
    ("ArchiveAutoReport.daily", R, "lab_exam_report/item[1]", "dept_code", DROP, "strReportInfo.lab_exam_report[0].dept_code", "required"),
    ("DeleteLabInfo", F, "report_form_no", None, DROP, "strFilter.report_form_no", "required"),
    ("DeleteLabInfo", F, "event_type", None, "7", "strFilter.event_type", "code"),
    ("DeleteLabInfo", F, "id_type", None, "", "strFilter.id_type", "empty"),
    ("DeleteLabInfo", F, "org_code", None, "4" * 129, "strFilter.org_code", "length"),
    ("DeleteExamInfo", F, "patient_id", None, DROP, "strFilter.patient_id", "required"),
    ("DeleteExamInfo", F, "id_type", None, "98", "strFilter.id_type", "code"),
    ("DeleteExamInfo", F, "event_no", None, "号" * 43, "strFilter.event_no", "length"),
    ("GetCheckLabList", F, "id_no", None, DROP, "strFilter.id_no", "required"),
    ("GetCheckLabList", F, "id_type", None, "1", "strFilter.id_type", "code"),
    ("GetCheckLabInfo", F, "id_type", None, DROP, "strFilter.id_type", "required"),
    ("GetCheckLabInfo", F, "id_no", None, "1" * 129, "strFilter.id_no", "length"),
    ("ExistsReCureInfo", F, ".", "id_no", DROP, "strFilter.id_no", "required"),
    ("ExistsReCureInfo", F, ".", "id_type", "AA", "strFilter.id_type", "code"),
    ("ExistsReCureInfo", F, "check/item[1]", None, "1" * 129, "strFilter.check[0]", "length"),
    ("ExistsReCureInfo", F, ".", "doc_name", "医" * 43, "strFilter.doc_name", "length"),
    ("GetLabInfo", F, "event_no", None, DROP, "strFilter.event_no", "required"),
    ("GetLabInfo", F, "id_type", None, "00", "strFilter.id_type", "code"),
    ("GetExamInfo", F, "event_no", None, DROP, "strFilter.event_no", "required"),
    ("GetExamInfo", F, "id_no", None, "", "strFilter.id_no", "empty"),
    ("SubmitAccept", R, "sehr_accept_record/item[2]", "reason", DROP, "strReportInfo.sehr_accept_record[1].reason", "required_if"),
    ("SubmitAccept", R, "sehr_accept_record/item[1]", "reason", "11", "strReportInfo.sehr_accept_record[0].reason", "code"),
    ("SubmitAccept", R, "sehr_accept_record/item[1]", "is_accept", "0", "strReportInfo.sehr_accept_record[0].is_accept", "code"),
    ("SubmitAccept", R, "sehr_accept_record/item[1]", "type", "lab", "strReportInfo.sehr_accept_record[0].type", "code"),
    ("SubmitAccept", R, "sehr_accept_record/item[1]", "new_event_type", "12", f"{SA}.new_event_type", "length"),
    ("SubmitAccept", R, "sehr_accept_record/item[1]", "record_time", "2024-05-30", f"{SA}.record_time", "format"),
    ("SubmitAccept", R, "sehr_accept_record/item[1]", "code", "2" * 257, "strReportInfo.sehr_accept_record[0].code", "length"),
    ("SubmitAccept", R, "sehr_accept_record/item[1]", "hr_org_code", DROP, "strReportInfo.sehr_accept_record[0].hr_org_code", "required"),
    ("SubmitQuote", R, "sehr_quote_record/item[1]", "type", "0", "strReportInfo.sehr_quote_record[0].type", "code"),
    ("SubmitQuote", R, "sehr_quote_record/item[2]", "doc_name", DROP, "strReportInfo.sehr_quote_record[1].doc_name", "required"),
    ("SubmitQuote", R, "sehr_quote_record/item[1]", "record_time", "2024-05-30 24:19:04", f"{SQ}.record_time", "format"),
    ("SubmitQuote", R, "sehr_quote_record", None, CLEAR, "strReportInfo.sehr_quote_record", "cardinality"),
]


@pytest.mark.parametrize("name,param,xpath,attr,value,path,rule", MUTATIONS, ids=[f"{m[0]}:{m[5]}:{m[6]}" for m in MUTATIONS])
def test_request_mutation(specs: Any, name: str, param: str, xpath: str, attr: str | None, value: Any, path: str, rule: str) -> None:
    it = iface(specs, name)
    body = example(specs, name)
    assert it.validate_request(body).valid
    body[param] = mutate_xml(body[param], xpath, attr, value)
    res = it.validate_request(body)
    assert (path, rule) in rules(res), rules(res)


RESPONSE_MUTATIONS: list[tuple[str, str, str | None, Any, str, str]] = [
    ("GetCheckLabList", "item[1]", "type", "1", "item[0].type", "code"),
    ("GetCheckLabList", "item[2]", "item_code", DROP, "item[1].item_code", "required"),
    ("GetCheckLabInfo", "exammaster/item[1]", "state", "9", "exammaster[0].state", "code"),
    ("GetCheckLabInfo", "labmaster/item[1]", "report_form_no", DROP, "labmaster[0].report_form_no", "required"),
    ("GetCheckLabInfo", "lab_subitem/item[1]", "expired_time", "2024-05-26", "lab_subitem[0].expired_time", "format"),
    ("GetCheckLabInfo", "exam_subitem/item[1]", "recognition", "9", "exam_subitem[0].recognition", "code"),
    ("ExistsReCureInfo", "labmaster[1]", "dtime", "2024-05-23", "labmaster[0].dtime", "format"),
    ("ExistsReCureInfo", "labmaster[1]/item[3]", "expired_time", "明天", "labmaster[0].item[2].expired_time", "format"),
    ("ExistsReCureInfo", "exammaster[1]", "report_form_no", DROP, "exammaster[0].report_form_no", "required"),
    ("GetLabInfo", "labmaster[1]/item[1]", "result_type", "XX", "labmaster[0].item[0].result_type", "code"),
    ("GetLabInfo", "labmaster[1]", "sex_code", "F", "labmaster[0].sex_code", "code"),
    ("GetExamInfo", "exammaster[1]", "recognition", "3", "exammaster[0].recognition", "code"),
    ("GetExamInfo", "exammaster[1]", "create_at", "1687790523000", "exammaster[0].create_at", "format"),
]


@pytest.mark.parametrize("name,xpath,attr,value,path,rule", RESPONSE_MUTATIONS, ids=[f"{m[0]}:{m[4]}:{m[5]}" for m in RESPONSE_MUTATIONS])
def test_response_mutation(specs: Any, name: str, xpath: str, attr: str | None, value: Any, path: str, rule: str) -> None:
    it = iface(specs, name)
    body = example(specs, name, "response")
    assert it.validate_response(body).valid
    res = it.validate_response(mutate_xml(body, xpath, attr, value))
    assert (path, rule) in rules(res), rules(res)


VIEW_MUTATIONS: list[tuple[str, str, Any, str]] = [
    ("v_web_jcjg", "FILEPATH", DROP, "required"),
    ("v_web_jcjg", "FILESIZE", "abc", "type"),
    ("v_web_jcjg", "PATIENTSEX", "3", "code"),
    ("v_web_jcjg", "STUDYDATE", "20240511", "format"),
    ("v_web_jctj", "INSTANCECOUNT", "3.5", "pattern"),
    ("v_web_jctj", "MODIFYTIME", DROP, "required"),
    ("v_web_jctj", "FILESIZE", -5, "range"),
]


@pytest.mark.parametrize("name,column,value,rule", VIEW_MUTATIONS)
def test_view_row_mutation(specs: Any, name: str, column: str, value: Any, rule: str) -> None:
    it = iface(specs, name)
    row = example(specs, name)
    if value is DROP:
        del row[column]
    else:
        row[column] = value
    assert (column, rule) in rules(it.validate_request(row))


def test_view_extra_column_is_a_warning(specs: Any) -> None:
    row = example(specs, "v_web_jctj")
    row["BODYPART"] = "HEAD"
    res = iface(specs, "v_web_jctj").validate_request(row)
    assert res.valid and ("BODYPART", "unknown") in warn_rules(res)


# -- choices the spec made where the document is ambiguous ----------------------------------------


def test_parameters_and_payload_roots(specs: Any) -> None:
    it = iface(specs, "ArchiveAutoReport.lab")
    body = example(specs, "ArchiveAutoReport.lab")
    assert it.validate_request({**body, "strReportInfo": "not xml"}).errors[0].rule == "parse"
    res = it.validate_request({"strCredential": body["strCredential"]})
    assert ("strReportInfo", "required") in rules(res)
    # strKey is added by the crypto envelope: the plaintext message is valid without it, and with it
    assert it.validate_request({**body, "strKey": "BHr0c2VjcmV0a2V5Y2lwaGVydGV4dA=="}).valid
    assert ("strKey", "pattern") in rules(it.validate_request({**body, "strKey": "not base64!"}))


def test_exam_example_spellings_are_aliases(specs: Any) -> None:
    it = iface(specs, "ArchiveAutoReport.exam")
    res = it.validate_request(example(specs, "ArchiveAutoReport.exam"))
    assert res.valid
    assert ("strReportInfo.exammaster[0].Id_Type_Code", "alias") in warn_rules(res)
    body = example(specs, "ArchiveAutoReport.exam")
    body[R] = mutate_xml(body[R], EXAM_M, "Id_Type_Code", DROP)
    assert ("strReportInfo.exammaster[0].id_type_code", "required") in rules(it.validate_request(body))
    desc = example(specs, "ArchiveAutoReport.exam")
    root = etree.fromstring(desc[R].encode("utf-8"))
    item = root.find("exammaster/item")
    item.set("patient_condition_desc", item.attrib.pop("patient_condition_descr"))
    desc[R] = etree.tostring(root, encoding="unicode")
    assert it.validate_request(desc).valid  # the table's spelling is accepted too
    lab = example(specs, "ArchiveAutoReport.lab")
    root = etree.fromstring(lab[R].encode("utf-8"))
    item = root.find("labmaster/item")
    item.set("Pdf", item.attrib.pop("pdf"))
    lab[R] = etree.tostring(root, encoding="unicode")
    assert iface(specs, "ArchiveAutoReport.lab").validate_request(lab).valid


def test_local_codes_in_std_dept_fields_are_warnings(specs: Any) -> None:
    res = iface(specs, "ArchiveAutoReport.exam").validate_request(example(specs, "ArchiveAutoReport.exam"))
    assert ("strReportInfo.exammaster[0].participant_dept_std_code", "code") in warn_rules(res)
    body = example(specs, "ArchiveAutoReport.daily")
    body[R] = mutate_xml(body[R], "lab_exam_report/item[1]", "dept_std_code", "1190000")
    res = iface(specs, "ArchiveAutoReport.daily").validate_request(body)
    assert res.valid and ("strReportInfo.lab_exam_report[0].dept_std_code", "code") in warn_rules(res)


def test_modality_is_an_open_list(specs: Any) -> None:
    body = example(specs, "ArchiveAutoReport.exam")
    body[R] = mutate_xml(body[R], EXAM_M, "class_name", "病理")
    res = iface(specs, "ArchiveAutoReport.exam").validate_request(body)
    assert res.valid and ("strReportInfo.exammaster[0].class_name", "code") in warn_rules(res)


def test_retrieve_date_accepts_date_or_datetime(specs: Any) -> None:
    it = iface(specs, "ArchiveAutoReport.lab")
    for value, ok in [("2024-03-11", True), ("2024-03-11 09:29:00", True), ("2024-03-11 9:29", False), ("2024-13-11", False)]:
        body = example(specs, "ArchiveAutoReport.lab")
        body[R] = mutate_xml(body[R], LAB_M, "retrieve_date", value)
        assert it.validate_request(body).valid is ok, value


def test_lengths_count_utf8_bytes(specs: Any) -> None:
    it = iface(specs, "ArchiveAutoReport.lab")
    body = example(specs, "ArchiveAutoReport.lab")
    body[R] = mutate_xml(body[R], LAB_M, "name", "名" * 42)  # 126 bytes
    assert it.validate_request(body).valid
    body[R] = mutate_xml(body[R], LAB_M, "name", "名" * 43)  # 129 bytes, 43 characters
    assert ("strReportInfo.labmaster[0].name", "length") in rules(it.validate_request(body))


def test_reject_needs_a_reason_accept_does_not(specs: Any) -> None:
    it = iface(specs, "SubmitAccept")
    body = example(specs, "SubmitAccept")
    body[R] = mutate_xml(body[R], "sehr_accept_record/item[1]", "is_accept", "1")
    body[R] = mutate_xml(body[R], "sehr_accept_record/item[1]", "reason", DROP)
    assert it.validate_request(body).valid
    body[R] = mutate_xml(body[R], "sehr_accept_record/item[1]", "reason", "10")  # the dictionary's last code
    assert it.validate_request(body).valid


def test_get_check_lab_info_event_no_may_be_empty_or_absent(specs: Any) -> None:
    it = iface(specs, "GetCheckLabInfo")
    body = example(specs, "GetCheckLabInfo")
    assert it.validate_request(body).valid
    body[F] = mutate_xml(body[F], "event_no", None, DROP)
    assert it.validate_request(body).valid


def test_exists_recure_info_lists_are_optional(specs: Any) -> None:
    it = iface(specs, "ExistsReCureInfo")
    body = example(specs, "ExistsReCureInfo")
    body[F] = mutate_xml(body[F], "check", None, DROP)
    assert it.validate_request(body).valid


def test_document_answer_deviations_are_warnings(specs: Any) -> None:
    res = iface(specs, "GetCheckLabInfo").validate_response(example(specs, "GetCheckLabInfo", "response"))
    assert res.valid
    w = warn_rules(res)
    assert ("exammaster[0].authenticator_dtime", "format") in w  # epoch milliseconds
    assert ("exammaster[0].sex_code", "code") in w  # F
    assert ("exammaster[0].is_abnormal", "code") in w  # 3
    assert ("exammaster[0].birth_date", "format") in w
    assert ("labmaster[0].class_code", "empty") in w
    res = iface(specs, "GetExamInfo").validate_response(example(specs, "GetExamInfo", "response"))
    assert res.valid and ("exammaster[0].outpatient_diag_name", "alias") in warn_rules(res)


@pytest.mark.parametrize("name", QUERIES)
def test_empty_query_answer(specs: Any, name: str) -> None:
    assert iface(specs, name).validate_response("<root />").valid
    assert iface(specs, name).spec.success.prefix == "<"


@pytest.mark.parametrize("name", WRITES)
@pytest.mark.parametrize(
    "text,ok",
    [
        ("ok", True),
        ("error:失败原因", True),
        ("error: 失败原因", True),
        ("error：失败原因", True),
        ("OK", False),
        ("<root />", False),
        ("失败", False),
    ],
)
def test_text_answers(specs: Any, name: str, text: str, ok: bool) -> None:
    assert iface(specs, name).validate_response(text).valid is ok


@pytest.mark.parametrize(
    "name,ok", [("DeleteLabInfo", True), ("DeleteExamInfo", True), ("ArchiveAutoReport.lab", False), ("SubmitQuote", False)]
)
def test_ok_with_quoting_info_only_for_voids(specs: Any, name: str, ok: bool) -> None:
    assert iface(specs, name).validate_response("ok: 昌吉市人民医院/急诊外科/郑伟军").valid is ok
    assert iface(specs, name).validate_response("ok：（昌吉市人民医院 急诊外科 郑伟军）").valid is ok


def test_credential_org_name_is_the_element_text(specs: Any) -> None:
    from engine.spec.xmlsafe import obj_to_xml, parse_xml, to_bytes, xml_to_obj

    node = iface(specs, "GetCheckLabList").request.node.children["strCredential"]
    xml = '<root><org code="457759922">昌吉市人民医院</org><visitor type="0" code="user01" key="pass01"> </visitor></root>'
    obj = xml_to_obj(parse_xml(xml.encode("utf-8")), node)
    assert obj == {"org": {"code": "457759922", "name": "昌吉市人民医院"}, "visitor": {"type": "0", "code": "user01", "key": "pass01"}}
    back = to_bytes(obj_to_xml("root", obj, node)).decode("utf-8")
    assert back == '<root><org code="457759922">昌吉市人民医院</org><visitor type="0" code="user01" key="pass01"/></root>'

"""The demo bridge's sample mappings produce messages that validate against the real platform specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHAINS = [
    ("hospital_lis/lab_report", "canonical/lab_report"),
    ("hospital_lis/lab_report", "xinjiang_mr/ArchiveAutoReport.lab"),
    ("hospital_pacs/exam_report", "canonical/exam_report"),
    ("hospital_pacs/exam_report", "jilin_imaging/savePatientExam"),
    ("hospital_pacs/exam_report", "xinjiang_mr/ArchiveAutoReport.exam"),
]


def _example(specs, ref: str):
    return specs.interface(ref).spec.examples[0].body


@pytest.mark.parametrize(("source", "target"), CHAINS)
def test_source_examples_validate_end_to_end(real_specs, real_mappings, source: str, target: str) -> None:
    record = _example(real_specs, source)
    assert real_specs.interface(source).request.validate(record).valid
    chain = real_mappings.route(source, target)
    for t, out in chain.trace(record):
        res = t.validate(out)
        assert res.valid, (t.id, res.to_dict()["errors"])


@pytest.mark.parametrize(
    ("model", "mapping"),
    [
        ("lab_report", "lab_report.xinjiang_mr"),
        ("exam_report", "exam_report.jilin_imaging"),
        ("exam_report", "exam_report.xinjiang_mr"),
        ("recognition_query", "recognition_query.city_lab_mr.HR01"),
    ],
)
def test_canonical_test_data_validates_on_platforms(real_mappings, model: str, mapping: str) -> None:
    record = json.loads((REPO / "tests" / "data" / "canonical" / f"{model}.json").read_text(encoding="utf-8"))
    t = real_mappings.get(mapping)
    res = t.validate(t.translate(record))
    assert res.valid, res.to_dict()["errors"]


def test_lis_report_rows_become_labmaster_and_subitems(real_specs, real_mappings) -> None:
    rows = _example(real_specs, "hospital_lis/lab_report")
    t = real_mappings.get("lab_report.xinjiang_mr")
    canonical = real_mappings.get("hospital_lis.lab_report").translate(rows)
    tree = t.build(canonical)["strReportInfo"]
    assert len(tree["labmaster"]) == 1 and len(tree["lab_subitem"]) == len(rows)
    master, alt = tree["labmaster"][0], tree["lab_subitem"][1]
    assert (master["sex_code"], master["sex_name"], master["event_type"]) == ("1", "男性", "1")
    assert alt["result_interpre"] == "H" and alt["effective_dtime"] == master["authenticator_dtime"]
    assert t.supplied == ("strCredential",)


def test_unmapped_local_code_in_a_sample_mapping(real_specs, real_mappings) -> None:
    from engine.translate import UnmappedCode

    rows = [dict(r) for r in _example(real_specs, "hospital_lis/lab_report")]
    rows[1]["RESULT_FLAG"] = "↑"
    with pytest.raises(UnmappedCode) as ei:
        real_mappings.get("hospital_lis.lab_report").translate(rows)
    assert (ei.value.code, ei.value.field, ei.value.source) == ("↑", "items[1].interpretation", "[1].RESULT_FLAG")


def test_response_mapping_back(real_specs, real_mappings) -> None:
    t = real_mappings.get("city_lab_mr.HR01.response")
    answer = {"messages": {"EVN": {"eventTypeCode": "01", "eventTypeName": "可互认报告查询服务"},
                           "QAK": {"flag": "true", "url": "http://mr.example/p?id=1"}}}
    assert real_specs.interface("city_lab_mr/HR01").validate_response(answer).valid
    query = json.loads((REPO / "tests" / "data" / "canonical" / "recognition_query.json").read_text(encoding="utf-8"))
    out = t.translate(answer, request=query)
    assert (out["query_type"], out["kind"], out["found"], out["view_url"]) == ("history", "lab", True, "http://mr.example/p?id=1")
    assert out["patient"] == query["patient"]
    res = t.validate(out)
    assert res.valid, res.to_dict()["errors"]
    assert t.translate({"messages": {"QAK": {"flag": "false"}}}, request=query)["found"] is False


def test_one_lis_row_alone_is_a_one_line_report(real_specs, real_mappings) -> None:
    """The dbview poller may deliver rows one by one: a single row maps as a report with one item."""
    row = _example(real_specs, "hospital_lis/lab_report")[1]
    chain = real_mappings.route("hospital_lis/lab_report", "xinjiang_mr/ArchiveAutoReport.lab")
    canonical, message = (out for _, out in chain.trace(row))
    assert canonical["report_no"] == row["REPORT_NO"] and [i["local_code"] for i in canonical["items"]] == ["ALT"]
    assert chain.steps[-1].validate(message).valid


def test_chains_keep_one_direction(real_mappings) -> None:
    """Requests and answers meet at canonical models; a chain never turns an answer into a request."""
    to_query = [c.id for c in real_mappings.chains_to("xinjiang_mr/GetCheckLabList")]
    assert "hospital_his.recognition_query -> recognition_query.xinjiang_mr.GetCheckLabList" in to_query
    assert not any(".response" in cid for cid in to_query)
    to_answer = [c.id for c in real_mappings.chains_to("hospital_his/recognition_query#response")]
    assert "city_lab_mr.HR01.response -> hospital_his.recognition_query.response" in to_answer
    assert "hospital_his.recognition_query -> hospital_his.recognition_query.response" not in to_answer

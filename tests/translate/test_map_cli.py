"""`specbridge map` in a subprocess, as an integrator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


ENTRY = "import sys; from engine.cli import main; sys.exit(main())"  # what the `specbridge` console script runs


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENTRY, "map", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def _rows(tmp_path: Path, **change: str) -> Path:
    from engine.spec import load_specs

    rows = [dict(r) for r in load_specs(REPO / "specs", strict=False).interface("hospital_lis/lab_report").spec.examples[0].body]
    rows[-1].update(change)
    p = tmp_path / "rows.json"
    p.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return p


def test_map_lis_rows_to_xinjiang(tmp_path: Path) -> None:
    p = _rows(tmp_path)
    r = run("xinjiang_mr/ArchiveAutoReport.lab", str(p))
    assert r.returncode == 0, r.stderr
    assert "== hospital_lis.lab_report: hospital_lis/lab_report -> canonical/lab_report" in r.stdout
    assert "== lab_report.xinjiang_mr: canonical/lab_report -> xinjiang_mr/ArchiveAutoReport.lab" in r.stdout
    assert "<labmaster>" in r.stdout and "strCredential: supplied at send time" in r.stdout
    assert "xinjiang_mr/ArchiveAutoReport.lab: valid" in r.stderr


def test_map_json_from_canonical_with_named_mapping() -> None:
    r = run("jilin_imaging/savePatientExam", "tests/data/canonical/exam_report.json", "--mapping", "exam_report.jilin_imaging", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["chain"] == ["exam_report.jilin_imaging"] and out["source"] == "canonical/exam_report"
    assert out["validation"]["valid"] is True
    assert out["message"]["hospitalCode"] and out["message"]["reportStatus"] in {"1", "2", "3", "4", "5", "6", "7"}


def test_map_reports_unmapped_code_and_target_findings(tmp_path: Path) -> None:
    r = run("xinjiang_mr/ArchiveAutoReport.lab", str(_rows(tmp_path, RESULT_FLAG="↑")))
    assert r.returncode == 1
    assert "code '↑' is not in code map `lis_result_flag`" in r.stderr
    assert "items[1].interpretation" in r.stderr and "[1].RESULT_FLAG" in r.stderr
    r = run("xinjiang_mr/ArchiveAutoReport.lab", str(_rows(tmp_path, RESULT="")), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert {(e["path"], e["rule"]) for e in out["validation"]["errors"]} >= {("strReportInfo.lab_subitem[1].result_value", "required")}


def test_map_usage_errors(tmp_path: Path) -> None:
    assert run("nope/X", "tests/data/canonical/exam_report.json").returncode == 2
    assert run("city_lab_mr/accesstoken", "tests/data/canonical/exam_report.json").returncode == 2
    assert run("jilin_imaging/savePatientExam", str(tmp_path / "missing.json")).returncode == 2


def test_map_code_shows_the_generated_builders(tmp_path: Path) -> None:
    r = run("xinjiang_mr/ArchiveAutoReport.lab", str(_rows(tmp_path)), "--code")
    assert r.returncode == 0, r.stderr
    head = "# == hospital_lis.lab_report: hospital_lis/lab_report -> canonical/lab_report (specs/mappings/hospital_lis.lab_report.yaml)"
    assert head in r.stdout
    assert "def build_lab_report_xinjiang_mr_fields(s):" in r.stdout and "out = {}" in r.stdout
    assert "<labmaster>" not in r.stdout  # the code, not a translation

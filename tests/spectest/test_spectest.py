"""`specbridge test`: spec unit tests against the real specs/ tree, with passing, failing, malformed
and erroring fixture test files. In-process through engine.cli.main, and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).parents[2]
FIX = Path("tests/spectest/fixtures")


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # reported paths are relative to the working directory


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["test", *args])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def test_passing_fixtures_exit_0_and_cover_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, str(FIX / "pass"), "--specs", "specs", "--json")
    assert code == 0, lines
    report = json.loads(lines[-1])
    assert (report["passed"], report["failed"], report["errors"]) == (10, 0, 0)
    kinds = {r["kind"] for r in report["results"]}
    assert kinds == {"map", "validate"}
    chains = {r["name"]: r["chain"] for r in report["results"]}
    assert chains["map contains"] == "hospital_pacs.exam_report -> exam_report.jilin_imaging"


def test_failures_are_one_line_each_with_file_line_and_what_differed(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, str(FIX / "fail"), "--specs", "specs")
    assert code == 1
    f = "tests/spectest/fixtures/fail/tests/failing.yaml"
    heads = [ln for ln in lines if ln.startswith(f)]
    assert len(heads) == 7  # one per failing case; the passing one prints nothing
    assert f'{f}:8: test wrong value: sex: expected "1", got "2"' in lines  # the line of the differing key
    assert f"{f}:17: test wrong list length: strReportInfo.lab_subitem: expected 1 item(s), got 2" in lines
    assert f'{f}:23: test present but should be absent: idCardNo: expected absent, got "110105197206150026"' in lines
    assert any(ln.startswith(f"{f}:30: test error text differs: translation failed with") and "pacs_sex" in ln for ln in heads)
    assert any(ln.startswith(f"{f}:36: test expected an error: expected translation to fail with 'pacs_sex'") for ln in heads)
    should = "the request (jilin_imaging/savePatientExam) should be valid but: studyUid: required: studyUid is required"
    assert f"{f}:42: test should be valid: {should}" in lines
    assert any(ln.startswith(f"{f}:48: test finding missing: expected finding {{path=studyUid, rule=length}} not found") for ln in heads)
    assert "    (chain: hospital_pacs.exam_report -> exam_report.jilin_imaging)" in lines
    assert err.strip().endswith("8 tests in 1 files: 1 passed, 7 failed")


def test_exact_expectation_reports_each_difference_on_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "tests"
    d.mkdir()
    (d / "exact.yaml").write_text(
        "tests:\n"
        "  - name: exact\n"
        "    map: canonical/exam_report\n"
        "    from: sources/hospital_pacs/exam_report\n"
        "    example: a chest CT report\n"
        "    expect:\n"
        "      report_no: R2024051100071\n"
        "      modality: MR\n",
        encoding="utf-8",
    )
    code, lines, _ = run(capsys, str(d / "exact.yaml"), "--specs", "specs")
    assert code == 1
    assert lines[0].endswith("exact.yaml:2: test exact: 2 problems")
    assert '    line 8: modality: expected "MR", got "CT"' in lines
    assert any(ln.startswith("    line 6: (message): ") and "unexpected keys: accession_no, study_uid" in ln for ln in lines)


def test_malformed_test_files_are_file_line_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, str(FIX / "broken"), "--specs", "specs")
    assert code == 2
    b = "tests/spectest/fixtures/broken/tests"
    assert f"{b}/typo.yaml:6: unknown key `contain` (misspelt? see `specbridge test --schema`) at tests[0].contain" in lines
    assert any(ln.startswith(f"{b}/both.yaml:2: test `map and validate`: give exactly one of `map:`") for ln in lines)
    assert any(ln.startswith(f"{b}/both.yaml:7: test `expects nothing`: expects nothing") for ln in lines)
    assert "0 tests in 2 files: 0 passed, 0 failed, 3 errors" in err


def test_unknown_references_are_test_errors_exit_2_and_others_still_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, str(FIX / "error"), "--specs", "specs", "--json")
    assert code == 2
    report = json.loads(lines[-1])
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["fine"]["ok"]
    assert [p["line"] for p in by_name["unknown interface"]["problems"]] == [3]
    assert "unknown interface `jilin_imaging/savePatientExamm`" in by_name["unknown interface"]["problems"][0]["message"]
    assert "cannot read data/nope.json" in by_name["missing input file"]["problems"][0]["message"]
    assert "has no example named 'no such example'" in by_name["unknown example"]["problems"][0]["message"]
    assert all(by_name[n]["error"] for n in ("unknown interface", "missing input file", "unknown example"))


def test_k_filters_by_name_and_reports_deselected(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, str(FIX / "fail"), "--specs", "specs", "-k", "passes")
    assert code == 0 and lines == []
    assert "1 tests in 1 files: 1 passed, 0 failed, 7 deselected by -k" in err
    code, _, err = run(capsys, str(FIX / "fail"), "--specs", "specs", "-k", "no*such")
    assert code == 2 and "no test matches -k 'no*such'" in err


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "no/such/dir")[0] == 2
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2 and "no test files under" in err


def test_schema_is_json_schema_of_test_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "--schema")
    assert code == 0
    schema = json.loads("\n".join(lines))
    case = schema["$defs"]["Case"]
    assert {"map", "validate", "contains", "expect", "errors", "example", "set", "remove"} <= set(case["properties"])
    assert case["additionalProperties"] is False  # a typo is an error, never silently ignored


def test_real_specs_tests_pass_in_a_subprocess() -> None:
    """What CI runs (.ci/run): every tests/*.yaml under specs/, against specs/."""
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "test", "specs/"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    summary = proc.stderr.strip().splitlines()[-1]
    n_tests, n_files = int(summary.split()[0]), int(summary.split()[3])
    assert n_files >= 18 and n_tests >= 60 and summary.endswith(f"{n_tests} passed, 0 failed")


def test_every_platform_and_mapping_chain_has_a_test_file() -> None:
    """The specs' own tests document behaviour for integrators: one file per platform, and every
    chain the demo bridge routes is exercised by some mapping test."""
    from engine.spectest.load import discover, load_file

    files = discover([ROOT / "specs"])
    for kind in ("platforms", "sources"):
        for pdir in (ROOT / "specs" / kind).iterdir():
            assert any(f.parent == pdir / "tests" for f in files), f"no tests/ for {pdir.name}"
    targets = {lc.case.map for f in files for lc in load_file(f)[0] if lc.case.map}
    for route_target in ("xinjiang_mr/ArchiveAutoReport.lab", "pe_system/lis_pubReport", "jilin_imaging/savePatientExam",
                         "xinjiang_mr/ArchiveAutoReport.exam", "pe_system/pacs_pubReport", "city_lab_mr/HR01",
                         "wedoctor_supervision/A2000", "wedoctor_supervision/A2001", "jilin_imaging/uploadDicom",
                         "canonical/recognition_query"):
        assert route_target in targets, route_target


def test_check_ignores_test_folders(capsys: pytest.CaptureFixture[str]) -> None:
    """`specbridge check` walks specs/: the tests/ folders are neither specs nor warnings."""
    assert main(["check", "specs"]) == 0
    out = capsys.readouterr().out
    assert "/tests/" not in out and "tests" not in [ln.split(":")[0].rsplit("/", 1)[-1] for ln in out.splitlines()]

"""The `reconcile:` section of an interface: checked by `specbridge check` at file:line, shown by `specbridge docs`.

Each test copies the jilin_imaging platform (with the common specs and the reconciliation mapping) and
breaks one thing in savePatientExam's section."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.spec import load_specs
from engine.spec.docs import interface_page

ROOT = Path(__file__).parents[2]
SPEC = "platforms/jilin_imaging/interfaces/savePatientExam.yaml"
MAPPING = "jilin_imaging.savePatientExam.reconcile.yaml"
SECTION = """reconcile:
  query: queryFormerlyExam
  mapping: jilin_imaging.savePatientExam.reconcile
  records: datas
  match: {accessNumber: accessNumber, hospitalCode: hospitalCode}
"""


def tree(tmp: Path, section: str = SECTION, mapping: str | None = None) -> Path:
    specs = tmp / "specs"
    shutil.copytree(ROOT / "specs" / "common", specs / "common")
    shutil.copytree(ROOT / "specs" / "platforms" / "jilin_imaging", specs / "platforms" / "jilin_imaging")
    (specs / "mappings").mkdir()
    text = (ROOT / "specs" / "mappings" / MAPPING).read_text(encoding="utf-8")
    (specs / "mappings" / MAPPING).write_text(mapping if mapping is not None else text, encoding="utf-8")
    spec = specs / SPEC
    body = spec.read_text(encoding="utf-8")
    start = body.index("reconcile:\n")
    end = body.index("twin:\n", start)
    spec.write_text(body[:start] + section + body[end:], encoding="utf-8")
    return specs


def reconcile_findings(specs: Path) -> list[str]:
    return [str(f) for f in load_specs(specs, strict=False).findings if "reconcile" in f.message]


def line_of(specs: Path, text: str) -> int:
    return next(i for i, line in enumerate((specs / SPEC).read_text(encoding="utf-8").splitlines(), 1) if text in line)


def test_the_shipped_section_is_clean_and_documented(tmp_path: Path) -> None:
    specs = tree(tmp_path)
    specset = load_specs(specs, strict=False)
    assert [f for f in specset.findings if "reconcile" in f.message] == []
    page = interface_page(specset.interface("jilin_imaging/savePatientExam"))
    assert "## Reconciliation" in page and "[queryFormerlyExam](queryFormerlyExam.md)" in page
    assert "`accessNumber` = sent `accessNumber`" in page


@pytest.mark.parametrize(
    ("section", "needle", "message"),
    [
        (SECTION.replace("query: queryFormerlyExam", "query: queryFormerExam"), "query: queryFormerExam",
         "reconcile: query names `queryFormerExam`, which jilin_imaging does not define"),
        (SECTION.replace("query: queryFormerlyExam", "query: savePatientExam"), "query: savePatientExam", "reconcile: query names itself"),
        (SECTION.replace("records: datas", "records: msg"), "records: msg", "reconcile: records `msg` is not a list of objects"),
        (SECTION.replace("{accessNumber: accessNumber,", "{accesNumber: accessNumber,"), "match:",
         "reconcile: `accesNumber` is not a field of `datas[]` of `queryFormerlyExam`"),
        (SECTION.replace("hospitalCode: hospitalCode}", "hospitalCode: hospCode}"), "match:",
         "reconcile: `hospCode` is not a request field of `savePatientExam`"),
        (SECTION.replace("mapping: jilin_imaging.savePatientExam.reconcile", "mapping: nowhere"), "mapping: nowhere",
         "reconcile: no mapping `nowhere`"),
    ],
)
def test_a_broken_section_is_an_error_at_its_line(tmp_path: Path, section: str, needle: str, message: str) -> None:
    specs = tree(tmp_path, section)
    (got,) = reconcile_findings(specs)
    assert got.startswith(f"specs/{SPEC}:{line_of(specs, needle)}: {message}"), got


def test_an_unknown_key_in_the_section_is_named_at_its_line(tmp_path: Path) -> None:
    specs = tree(tmp_path, SECTION + "  matches: {}\n")
    findings = [str(f) for f in load_specs(specs, strict=False).errors]
    assert any(f.startswith(f"specs/{SPEC}:{line_of(specs, 'matches:')}:") and "matches" in f for f in findings), findings


def test_a_mapping_between_other_interfaces_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "specs" / "mappings" / MAPPING).read_text(encoding="utf-8")
    specs = tree(tmp_path, mapping=text.replace("to: jilin_imaging/queryFormerlyExam", "to: jilin_imaging/queryExamPdfData"))
    (got,) = reconcile_findings(specs)
    assert "must map jilin_imaging/savePatientExam to jilin_imaging/queryFormerlyExam (requests)" in got


def test_specbridge_check_reports_it_and_fails(tmp_path: Path) -> None:
    specs = tree(tmp_path, SECTION.replace("records: datas", "records: msg"))
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "check", str(specs)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=None)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"savePatientExam.yaml:{line_of(specs, 'records: msg')}: reconcile: records `msg`" in proc.stdout

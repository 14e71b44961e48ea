"""The CLI contract: check, validate (exit codes and --json), docs, schema. Real subprocesses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parents[2]


def run(*args: str, cwd: Path = ROOT, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, input=stdin, capture_output=True, timeout=120)
    out = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert "Traceback" not in out.stderr, out.stderr
    return out


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    dst = tmp_path / "specs"
    shutil.copytree(FIXTURES / "good", dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_check_clean_tree_exits_0(specs: Path) -> None:
    res = run("check", str(specs))
    assert res.returncode == 0, res.stdout


def test_check_misspelt_key_names_file_and_line(specs: Path) -> None:
    _edit(specs / "platforms/acme/interfaces/upload.yaml", "count: {type: int,", "count: {tpye: int,")
    res = run("check", str(specs))
    assert res.returncode == 1
    assert "platforms/acme/interfaces/upload.yaml:12: unknown key `tpye`" in res.stdout


def test_check_wrong_type_names_file_and_line(specs: Path) -> None:
    _edit(specs / "platforms/acme/interfaces/upload.yaml", "type: list\n      card: 1..3", "type: list\n      card: [1, 3]")
    res = run("check", str(specs))
    assert res.returncode == 1
    assert "upload.yaml:22: Expected `str | null`, got `array`" in res.stdout and "request.fields.items.card" in res.stdout


def test_check_dangling_code_table_names_file_and_line(specs: Path) -> None:
    _edit(specs / "platforms/acme/groups/patient.yaml", "codes: sex", "codes: gender")
    res = run("check", str(specs))
    assert res.returncode == 1
    assert "platforms/acme/groups/patient.yaml:4: unknown code table `gender`" in res.stdout


def test_check_reports_dangling_group_empty_table_and_untyped_field(specs: Path) -> None:
    _edit(specs / "platforms/acme/interfaces/upload.yaml", "use: patient", "use: patinet")
    (specs / "platforms/acme/codes/empty.yaml").write_text("title: 空\nvalues: {}\n", encoding="utf-8")
    _edit(specs / "platforms/acme/interfaces/upload.yaml", "certNo: {type: string,", "certNo: {")
    res = run("check", str(specs))
    assert res.returncode == 1
    assert "upload.yaml:8: unknown group `patinet`" in res.stdout
    assert "codes/empty.yaml:2: code table `empty` is empty" in res.stdout
    assert "upload.yaml:16: field `certNo` has no type" in res.stdout


def test_check_runs_examples(specs: Path) -> None:
    _edit(specs / "platforms/acme/interfaces/upload.yaml", 'orderNo: "AB12", patient', 'orderNo: "ab", patient')
    res = run("check", str(specs))
    assert res.returncode == 1
    assert "example `minimal` should be valid but: orderNo: length" in res.stdout


def test_check_yaml_syntax_error(specs: Path) -> None:
    (specs / "platforms/acme/codes/broken.yaml").write_text("title: x\nvalues:\n  a: [\n", encoding="utf-8")
    res = run("check", str(specs))
    assert res.returncode == 1 and "codes/broken.yaml:" in res.stdout and "YAML syntax" in res.stdout


def _msg(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "msg.json"
    p.write_bytes(data)
    return p


GOOD = {"orderNo": "AB12", "patient": {"name": "张三"}, "checkTime": "2024-02-29 10:00:00",
        "certNo": "C1", "certType": "1", "items": [{"code": "X1"}]}


def test_validate_exit_codes_and_json_contract(specs: Path, tmp_path: Path) -> None:
    ok = _msg(tmp_path, json.dumps(GOOD).encode())
    res = run("validate", "acme/upload", str(ok), "--specs", str(specs), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["valid"] is True
    bad = _msg(tmp_path, json.dumps({**GOOD, "orderNo": "ab"}).encode())
    res = run("validate", "acme/upload", str(bad), "--specs", str(specs), "--json")
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert out["valid"] is False
    assert {"path", "rule", "message", "expected", "actual"} <= set(out["errors"][0])
    assert {(e["path"], e["rule"]) for e in out["errors"]} == {("orderNo", "length"), ("orderNo", "pattern")}


def test_validate_response_flag(specs: Path, tmp_path: Path) -> None:
    p = _msg(tmp_path, b'{"code": 200, "msg": "ok"}')
    assert run("validate", "acme/upload", str(p), "--specs", str(specs), "--response").returncode == 0
    assert run("validate", "acme/upload", str(p), "--specs", str(specs)).returncode == 1


def test_validate_usage_errors_exit_2(specs: Path, tmp_path: Path) -> None:
    p = _msg(tmp_path, b"{}")
    res = run("validate", "acme/nope", str(p), "--specs", str(specs))
    assert res.returncode == 2 and "unknown interface `acme/nope`" in res.stderr
    res = run("validate", "acme/upload", str(tmp_path / "missing.json"), "--specs", str(specs))
    assert res.returncode == 2 and "No such file" in res.stderr


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"not json at all", "not valid JSON"),
        (b'{"orderNo": "AB', "not valid JSON"),
        ('{"orderNo": "张三"}'.encode("gbk"), "not UTF-8"),
        (b"{" + b" " * (50 * 1024 * 1024) + b"}", "exceeds the limit"),
    ],
)
def test_validate_malformed_input_one_line_reason(specs: Path, tmp_path: Path, data: bytes, needle: str) -> None:
    res = run("validate", "acme/upload", str(_msg(tmp_path, data)), "--specs", str(specs))
    assert res.returncode == 1
    lines = [ln for ln in res.stdout.splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("<report><id>R1</id>", "malformed XML"),
        ('<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><report><id>&b;</id></report>', "DOCTYPE is refused"),
    ],
)
def test_validate_bad_xml_payloads(specs: Path, tmp_path: Path, payload: str, needle: str) -> None:
    p = _msg(tmp_path, json.dumps({"strReport": payload, "strData": "[]"}).encode())
    res = run("validate", "acme/payload", str(p), "--specs", str(specs), "--json")
    assert res.returncode == 1
    errs = json.loads(res.stdout)["errors"]
    assert any(e["rule"] == "parse" and needle in e["message"] for e in errs)


def test_docs_writes_pages(specs: Path, tmp_path: Path) -> None:
    out = tmp_path / "docs"
    res = run("docs", "acme", "-o", str(out), "--specs", str(specs))
    assert res.returncode == 0
    page = (out / "acme" / "upload.md").read_text(encoding="utf-8")
    assert "| `items[].subs[].value` |" in page and "单号" in page and "codes: [signtype]" in page
    assert "| `1` | 签名 |" in (out / "acme" / "codes.md").read_text(encoding="utf-8")


def test_schema_is_json_schema() -> None:
    res = run("schema")
    schema = json.loads(res.stdout)
    assert "Field" in schema["$defs"] and "Interface" in schema["$defs"]
    assert schema["$defs"]["Field"]["additionalProperties"] is False

"""`specbridge new platform ID` on a fresh specs tree: the scaffold passes `check` and its own spec tests,
documents itself, and runs as a twin that answers its example request with the documented success and
its invalid example with the documented error. All real subprocesses and sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import pytest
import yaml
from lxml import etree
from scaffoldhelp import fresh_tree, run_cli, twin_process

from engine.cli import main
from engine.scaffold import new_platform

PLATFORMS = {"http_json": "demo_province", "soap": "demo_soap_province", "form": "demo_form_province"}
FILES = ["platform.yaml", "interfaces/uploadReport.yaml", "codes/patient_type.yaml", "tests/uploadReport.yaml"]
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh tree with one scaffold per transport (the default transport under the issue's own id)."""
    root = fresh_tree(tmp_path_factory.mktemp("fresh"))
    res = run_cli("new", "platform", "demo_province", cwd=root)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"created specs/platforms/demo_province/{rel}" for rel in FILES]
    for transport in ("soap", "form"):  # the same code path, in-process: each CLI start costs a second
        new_platform(root / "specs", PLATFORMS[transport], transport=transport)
    return root


def _yaml(root: Path, pid: str, rel: str) -> Any:
    return yaml.safe_load((root / "specs/platforms" / pid / rel).read_text(encoding="utf-8"))


def _examples(root: Path, pid: str, *, valid: bool) -> list[dict[str, Any]]:
    spec = _yaml(root, pid, "interfaces/uploadReport.yaml")
    return [e for e in spec["examples"] if e.get("part", "request") == "request" and e.get("valid", True) == valid]


def test_the_scaffold_has_every_slot(tree: Path) -> None:
    root = tree / "specs/platforms/demo_province"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == sorted(FILES)
    text = (root / "platform.yaml").read_text(encoding="utf-8")
    assert "# crypto:" in text and "demo_province_sm2_public" in text  # the crypto-profile slot, commented
    plat = yaml.safe_load(text)
    assert plat["id"] == "demo_province" and plat["transport"]["kind"] == "http_json" and plat["auth"]["kind"] == "none"
    assert plat["success"] == {"field": "code", "in": ["0"], "note": plat["success"]["note"]}
    assert {c for c, e in plat["errors"].items() if "invalid" in e.get("use_for", [])} == {"1001"}
    fields = _yaml(tree, "demo_province", "interfaces/uploadReport.yaml")["request"]["fields"]
    assert fields["patientType"]["codes"] == "patient_type" and fields["bedNo"]["required_if"] == {"field": "patientType", "equals": "2"}
    assert fields["fee"]["type"] == "decimal(8,2)" and fields["reportTime"]["format"] == "yyyy-MM-dd HH:mm:ss"


def test_check_passes_at_once(tree: Path) -> None:
    res = run_cli("check", "specs", cwd=tree)
    assert res.returncode == 0, res.stdout
    assert not [line for line in res.stdout.splitlines() if "demo_" in line], res.stdout  # not even a warning
    assert ": 0 errors" in res.stderr, res.stderr


def test_spec_tests_pass_and_can_fail(tree: Path, tmp_path: Path) -> None:
    dirs = [f"specs/platforms/{pid}" for pid in PLATFORMS.values()]
    res = run_cli("test", *dirs, cwd=tree)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "12 tests in 3 files: 12 passed, 0 failed" in res.stdout + res.stderr
    # The scaffold's tests check something: a wrong expectation fails.
    broken = fresh_tree(tmp_path / "broken")
    new_platform(broken / "specs", "demo_province")
    t = broken / "specs/platforms/demo_province/tests/uploadReport.yaml"
    t.write_text(t.read_text(encoding="utf-8").replace("{path: fee, rule: decimal}", "{path: fee, rule: range}"), encoding="utf-8")
    res = run_cli("test", "specs/platforms/demo_province", cwd=broken)
    assert res.returncode == 1 and "expected finding {path=fee, rule=range} not found" in res.stdout


def test_docs(tree: Path, tmp_path: Path) -> None:
    res = run_cli("docs", "demo_province", "-o", str(tmp_path / "out"), cwd=tree)
    assert res.returncode == 0, res.stderr
    page = (tmp_path / "out/demo_province/uploadReport.md").read_text(encoding="utf-8")
    assert "检查报告上传" in page and "patient_type" in page and "bedNo" in page
    assert "门诊" in (tmp_path / "out/demo_province/codes.md").read_text(encoding="utf-8")


async def _post_json(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.post(url, json=body) as r:
        return r.status, await r.json()


async def _post_form(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(url, data={k: str(v) for k, v in body.items()}) as r:
        return r.status, await r.json()


async def _post_soap(http: aiohttp.ClientSession, url: str, operation: str, params: dict[str, str]) -> tuple[int, str]:
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in params.items())
    envelope = (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP11}"><soap:Body>'
                f'<{operation} xmlns="http://tempuri.org/">{inner}</{operation}></soap:Body></soap:Envelope>')
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"http://tempuri.org/{operation}"'}
    async with http.post(url, data=envelope.encode(), headers=headers) as r:
        doc = etree.fromstring(await r.read())
    result = doc.find(f".//{{http://tempuri.org/}}{operation}Result")
    assert result is not None, etree.tostring(doc)
    return r.status, result.text or ""


async def test_twin_round_trip_json(tree: Path) -> None:
    """The issue's sequence: new platform demo_province, check, twin demo_province; the example request
    gets the success rule's code, the invalid one the documented `invalid` code naming the field."""
    plat = _yaml(tree, "demo_province", "platform.yaml")
    ok_code, bad_code = plat["success"]["in"][0], "1001"
    good, bad = _examples(tree, "demo_province", valid=True)[0]["body"], _examples(tree, "demo_province", valid=False)[0]["body"]
    async with twin_process(["demo_province", "--port", "0"], tree) as url, aiohttp.ClientSession() as http:
        status, body = await _post_json(http, f"{url}/api/uploadReport", good)
        assert status == 200 and body[plat["success"]["field"]] == ok_code and body["msg"] == plat["errors"][ok_code]["message"]
        assert body["data"]["reportId"]
        status, again = await _post_json(http, f"{url}/api/uploadReport", good)
        assert again["data"]["reportId"] == body["data"]["reportId"]  # stored under its key: an upsert
        status, body = await _post_json(http, f"{url}/api/uploadReport", bad)
        assert body["code"] == bad_code and body["msg"].startswith(plat["errors"][bad_code]["message"]) and "bedNo" in body["msg"]
        async with http.get(f"{url}/__twin__/stats") as r:
            stats = await r.json()
    assert stats["records"] == {"reports": 1} and stats["errors"] == {"uploadReport": {f"invalid:{bad_code}": 1}}


async def test_twin_round_trip_form(tree: Path) -> None:
    pid = PLATFORMS["form"]
    good, bad = _examples(tree, pid, valid=True)[0]["body"], _examples(tree, pid, valid=False)[0]["body"]
    async with twin_process([pid, "--port", "0"], tree) as url, aiohttp.ClientSession() as http:
        status, body = await _post_form(http, f"{url}/api/uploadReport", good)
        assert status == 200 and body["code"] == "0" and body["data"]["reportId"]
        status, body = await _post_form(http, f"{url}/api/uploadReport", bad)
        assert body["code"] == "1001" and "bedNo" in body["msg"]


async def test_twin_round_trip_soap(tree: Path) -> None:
    pid = PLATFORMS["soap"]
    good, bad = _examples(tree, pid, valid=True)[0]["body"], _examples(tree, pid, valid=False)[0]["body"]
    async with twin_process([pid, "--port", "0"], tree) as url, aiohttp.ClientSession() as http:
        service = f"{url}/services/DemoSoapProvinceService"
        async with http.get(f"{service}?wsdl") as r:
            assert r.status == 200 and b'name="uploadReport"' in await r.read()
        assert await _post_soap(http, service, "uploadReport", good) == (200, "ok")
        _, text = await _post_soap(http, service, "uploadReport", bad)
        assert text.startswith("error:") and "bedNo" in text
        async with http.get(f"{url}/__twin__/stats") as r:
            assert (await r.json())["records"] == {"reports": 1}


def test_refusal_is_one_line_exit_2(tree: Path) -> None:
    """The real command: an invalid id is refused with one line and exit code 2, nothing written."""
    before = sorted(p.name for p in (tree / "specs/platforms").iterdir())
    res = run_cli("new", "platform", "Demo", cwd=tree)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == ["specbridge: invalid platform id 'Demo': use a lowercase identifier (a-z, 0-9 and _, "
                                       "starting with a letter; e.g. demo_province)"]
    assert sorted(p.name for p in (tree / "specs/platforms").iterdir()) == before


@pytest.mark.parametrize(
    ("pid", "why"),
    [("demo-province", "invalid platform id 'demo-province'"), ("1demo", "invalid platform id"), ("class", "invalid platform id"),
     ("", "invalid platform id ''"), ("a" * 70, "invalid platform id"), ("demo province", "invalid platform id"),
     ("jilin_imaging", "specs/platforms/jilin_imaging already exists"), ("hospital_his", "specs/sources/hospital_his already exists")],
)
def test_refusals(tree: Path, pid: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The same command in-process (one CLI start per case would cost a second each)."""
    before = sorted(p.name for p in (tree / "specs/platforms").iterdir())
    assert main(["new", "platform", pid, "--dir", str(tree / "specs")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and why in err, err
    assert sorted(p.name for p in (tree / "specs/platforms").iterdir()) == before


def test_second_run_refuses_and_keeps_the_first(tmp_path: Path) -> None:
    root = fresh_tree(tmp_path)
    new_platform(root / "specs", "demo_province")
    plat = root / "specs/platforms/demo_province/platform.yaml"
    plat.write_text(plat.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    res = run_cli("new", "platform", "demo_province", "--transport", "soap", cwd=root)
    assert res.returncode == 2
    assert res.stderr.strip() == "specbridge: specs/platforms/demo_province already exists: choose another id or remove it"
    assert plat.read_text(encoding="utf-8").endswith("# edited\n")


def test_missing_specs_dir_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "platform", "demo_province", "--dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "nowhere: no such specs directory" in err
    assert not (tmp_path / "nowhere").exists()


def test_title_and_dir_options(tmp_path: Path) -> None:
    """Any title is quoted safely; --dir is honoured and the next-step hint names it."""
    (tmp_path / "mine").mkdir()
    title = '演示省: "全民健康" #1 {平台}'
    res = run_cli("new", "platform", "demo_province", "--dir", "mine", "--title", title, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "--specs mine" in res.stderr
    assert yaml.safe_load((tmp_path / "mine/platforms/demo_province/platform.yaml").read_text(encoding="utf-8"))["title"] == title
    res = run_cli("check", "mine", cwd=tmp_path)
    assert res.returncode == 0, res.stdout

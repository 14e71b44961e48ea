"""Issue 8's acceptance: a sample plugin installed from tests/, a platform spec using its signer and its
field types; check, validate, docs and a twin round trip work, and without it check names what is missing."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import aiohttp
import msgspec

from engine.crypto.profile import compile_profile
from engine.spec import load_specs
from tests.plugins.conftest import cli, env_with, line_of

VALID = {"claimNo": "C1", "cardNo": "4101000000000000", "visitDate": "20240318", "regionCode": "410100", "orgCode": "H4101"}


def test_check_validate_and_docs_with_the_sample_plugin(sample_site: Path, specs: Path, tmp_path: Path) -> None:
    res = cli("check", str(specs), sites=(sample_site,))
    assert res.returncode == 0, res.stdout + res.stderr
    assert not [ln for ln in res.stdout.splitlines() if "sample_province" in ln], res.stdout  # examples ran, none failed

    res = cli("validate", "sample_province/uploadClaim", "-", "--specs", str(specs), sites=(sample_site,), stdin=json.dumps(VALID))
    assert res.returncode == 0, res.stdout + res.stderr

    bad = {**VALID, "cardNo": "4101000000000008", "visitDate": "20240230", "orgCode": "X9", "regionCode": "420100"}
    res = cli("validate", "sample_province/uploadClaim", "-", "--json", "--specs", str(specs), sites=(sample_site,), stdin=json.dumps(bad))
    assert res.returncode == 1
    errors = {(e["path"], e["rule"]): e for e in json.loads(res.stdout)["errors"]}
    assert set(errors) == {("cardNo", "type:ybk_card"), ("visitDate", "type:gbt7408_date"), ("orgCode", "check:region_prefix"),
                           ("regionCode", "code")}  # the provider's table: only region codes of province 41
    assert errors[("visitDate", "type:gbt7408_date")]["message"] == "visitDate: not a calendar date"
    # a sensitive type's value is never echoed
    assert errors[("cardNo", "type:ybk_card")]["actual"] == "***" and "4101000000000008" not in res.stdout

    out = tmp_path / "docs"
    res = cli("docs", "sample_province", "--specs", str(specs), "-o", str(out), sites=(sample_site,))
    assert res.returncode == 0, res.stderr
    page = (out / "sample_province" / "extensions.md").read_text(encoding="utf-8")
    assert "## `hmac_sm3_salted` — signer" in page and "## `ybk_card` — field type" in page
    assert "Plugin `sample` (specbridge-sample-plugin 1.2.0); implemented by `specbridge_sample:SaltedHmacSm3`" in page
    assert "| `salt` | string | `\"\"` | Text put before the canonical string (the province's fixed application salt). |" in page
    assert "| `form` | `basic`, `extended` | `\"basic\"` | basic: YYYYMMDD; extended: YYYY-MM-DD. |" in page
    assert "[hmac_sm3_salted](extensions.md#signer-hmac_sm3_salted)" in (out / "sample_province" / "index.md").read_text(encoding="utf-8")
    claim = (out / "sample_province" / "uploadClaim.md").read_text(encoding="utf-8")
    assert "| `cardNo` | 医保卡号 | ybk_card |" in claim and '"pattern": "^410100\\\\d{10}$"' in claim


def test_without_the_plugin_check_names_each_missing_extension_with_file_and_line(sample_site: Path, specs: Path,
                                                                                 tmp_path: Path) -> None:
    """'Uninstalling' = the same site without the distribution's metadata: the module is there, no entry point is."""
    site = tmp_path / "site"
    shutil.copytree(sample_site, site)
    for dist_info in site.glob("specbridge_sample_plugin-*.dist-info"):
        shutil.rmtree(dist_info)
    res = cli("check", str(specs), sites=(site,))
    assert res.returncode == 1
    iface = specs / "platforms/sample_province/interfaces/uploadClaim.yaml"
    platform = specs / "platforms/sample_province/platform.yaml"
    why = "this platform needs plugin `specbridge-sample-plugin` (platform.yaml `plugins`), which is not installed"
    want = [
        f"platforms/sample_province/interfaces/uploadClaim.yaml:{line_of(iface, 'type: ybk_card')}: unknown field type `ybk_card`: {why}",
        f"platforms/sample_province/interfaces/uploadClaim.yaml:{line_of(iface, 'type: gbt7408_date')}: unknown field type "
        f"`gbt7408_date`: {why}",
        f"platforms/sample_province/platform.yaml:{line_of(platform, 'algorithm: hmac_sm3_salted')}: unknown signer "
        f"`hmac_sm3_salted`: {why}",
        f"platforms/sample_province/codes/regions.yaml:4: unknown code-table provider `gbt2260_sample`: {why}",
    ]
    for line in want:
        assert any(got.startswith(f"specs/{line}") for got in res.stdout.splitlines()), (line, res.stdout)
    assert "should be valid" not in res.stdout  # examples of a platform with missing extensions are not run


async def test_twin_round_trip_through_the_plugin_signer(sample_site: Path, specs: Path, tmp_path: Path, with_sample) -> None:
    """`specbridge twin` with the plugin installed verifies with its signer; the client signs in-process."""
    key = tmp_path / "key"
    key.write_text("s3cret-province-key", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", "twin", "sample_province", "--specs", str(specs), "--port", "0",
        "--secret", f"sample_province_key=file:{key}", env=env_with(sample_site), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert first.startswith("listening on "), first + (await proc.stderr.read()).decode()  # type: ignore[union-attr]
        url = first.split()[-1]
        platform = load_specs(specs).platforms["sample_province"].platform
        assert platform.crypto is not None
        client = compile_profile(platform.crypto, {"sample_province_key": "s3cret-province-key"}, role="client")
        sealed = client.seal_request(msgspec.json.encode(VALID), {"appid": "HOSP01", "timestamp": "1716000000000",
                                                                 "Content-Type": "application/json"})
        assert len(sealed.headers["sign"]) == 64 and sealed.headers["sign"].isupper()  # HMAC-SM3, HEX per the settings
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "/api/claim", data=sealed.body, headers=sealed.headers) as r:
                ok = await r.json()
            forged = {**sealed.headers, "sign": sealed.headers["sign"][::-1]}
            async with http.post(url + "/api/claim", data=sealed.body, headers=forged) as r:
                refused = await r.json()
            altered = msgspec.json.encode({**VALID, "claimNo": "C2"})  # the body is signed too
            async with http.post(url + "/api/claim", data=altered, headers=sealed.headers) as r:
                refused_body = await r.json()
            async with http.get(url + "/__twin__/stats") as r:
                stats = await r.json()
        assert ok["code"] == "0" and ok["claimId"], ok
        assert refused["code"] == "4003" and "plugin `sample` signer `hmac_sm3_salted`" in refused["msg"], refused
        assert refused_body["code"] == "4003", refused_body
        assert stats["delivered"] == {"uploadClaim": 1} and stats["errors"]["uploadClaim"] == {"crypto:4003": 2}
    finally:
        proc.terminate()
        await proc.wait()


def test_plugins_lists_distributions_versions_and_origins(sample_site: Path) -> None:
    res = cli("plugins", "--json", sites=(sample_site,))
    listed = {p["name"]: p for p in json.loads(res.stdout)["plugins"]}
    sample = listed["sample"]
    assert (sample["distribution"], sample["version"], sample["entry_point"], sample["error"]) == (
        "specbridge-sample-plugin", "1.2.0", "specbridge_sample:register", None)
    exts = {(e["kind"], e["name"]): e for e in sample["extensions"]}
    assert set(exts) == {("signer", "hmac_sm3_salted"), ("canonical", "sorted_query"), ("field_type", "gbt7408_date"),
                         ("field_type", "ybk_card"), ("check", "region_prefix"), ("code_table", "gbt2260_sample"),
                         ("envelope_step", "stamp"), ("transport", "jsonl_file")}
    signer = exts[("signer", "hmac_sm3_salted")]
    assert signer["origin"] == "specbridge_sample:SaltedHmacSm3" and signer["settings"] == "SaltedSettings"
    assert Path(signer["file"]) == sample_site / "specbridge_sample" / "__init__.py"
    builtin = {(e["kind"], e["name"]): e["origin"] for e in listed["specbridge"]["extensions"]}
    assert listed["specbridge"]["builtin"] and listed["specbridge"]["version"]
    assert builtin[("signer", "sm2")] == "engine.plugins.builtin:Sm2Signing"
    assert builtin[("check", "id_card")] == "engine.spec.checks:id_card"
    assert builtin[("field_type", "string")] == "engine.plugins.builtin:BuiltinType"
    assert builtin[("transport", "dbview")] == "engine.plugins.transports:Dbview"

    text = cli("plugins", "--kind", "signer", sites=(sample_site,)).stdout
    assert "plugin sample: specbridge-sample-plugin 1.2.0, entry point specbridge_sample:register" in text
    assert any(ln.split() == ["signer", "hmac_sm3_salted", "specbridge_sample:SaltedHmacSm3"] for ln in text.splitlines()), text
    assert "jsonl_file" not in text  # --kind

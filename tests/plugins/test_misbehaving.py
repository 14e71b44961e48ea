"""A plugin that fails to import, fails in register(), raises, or answers the wrong type is reported
with its name (and the extension's), never as a traceback; the rest of the engine goes on."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
import msgspec
import pytest

from engine.bridge.model import Bridge, JournalConfig, RetryConfig, Route, RouteTarget, Source, Target
from engine.crypto.profile import CryptoProfile, compile_profile
from engine.journal import State
from engine.plugins.errors import ExtensionCryptoError
from engine.runtime.bridge import BridgeRuntime
from engine.spec import load_specs
from engine.translate import load_mappings
from engine.twin.serve import start_twin
from tests.plugins.conftest import FIXTURES, cli, edit, line_of

GOOD = {"claimNo": "C1", "cardNo": "4101000000000000", "visitDate": "20240318"}


def test_registry_keeps_what_loaded_and_names_what_did_not(with_both) -> None:
    reg = with_both
    assert {e.name for e in reg.plugin("sample").extensions} >= {"hmac_sm3_salted", "ybk_card"}  # the rest still loads
    assert {e.name for e in reg.plugin("bad").extensions} == {"explodes", "bytes_sig", "int_check", "raising_check", "crashing",
                                                              "not_a_mapping", "bad_send"}
    broken = reg.plugin("broken")
    assert broken.error == "ModuleNotFoundError: No module named 'specbridge_no_such_module'"
    assert (broken.dist, broken.version, broken.entry_point) == ("specbridge-bad-plugin", "0.0.1", "specbridge_no_such_module:register")
    assert reg.plugin("half").error == "RuntimeError: half-way failure in register()"
    assert reg.get("check", "half_check") is None  # registered before the failure: dropped with it


def test_plugins_and_check_report_a_plugin_that_fails_to_import(sample_site: Path, bad_site: Path, specs: Path) -> None:
    res = cli("plugins", sites=(sample_site, bad_site))
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    i = lines.index("plugin broken: specbridge-bad-plugin 0.0.1, entry point specbridge_no_such_module:register")
    assert lines[i + 1] == "  FAILED to load: ModuleNotFoundError: No module named 'specbridge_no_such_module'"
    assert "  FAILED to load: RuntimeError: half-way failure in register()" in lines
    assert any(ln.split()[:2] == ["signer", "hmac_sm3_salted"] for ln in lines)  # the sample plugin is listed, loaded

    res = cli("check", str(specs), sites=(sample_site, bad_site))
    assert res.returncode == 0, res.stdout  # warnings: no spec uses the broken plugins
    assert ("<plugin broken>:0: warning: failed to load: ModuleNotFoundError: No module named 'specbridge_no_such_module' "
            "(`broken` (specbridge-bad-plugin 0.0.1, entry point specbridge_no_such_module:register)); the other plugins are loaded"
            ) in res.stdout.splitlines()
    assert "<plugin half>:0: warning: failed to load: RuntimeError: half-way failure in register()" in res.stdout


def test_checks_and_types_that_raise_or_answer_wrongly_are_plugin_findings(with_both, specs: Path) -> None:
    path = specs / "platforms/sample_province/interfaces/uploadClaim.yaml"
    edit(path, "    amount: {type: \"decimal(10,2)\", title: 金额}",
         "    amount: {type: \"decimal(10,2)\", title: 金额}\n    memo: {type: string, checks: [int_check, raising_check]}\n"
         "    extra: {type: crashing}")
    iface = load_specs(specs).interface("sample_province/uploadClaim")
    res = iface.validate_request(msgspec.json.encode({**GOOD, "memo": "m", "extra": "x"}))
    assert [(e.path, e.rule, e.message) for e in res.errors] == [
        ("memo", "plugin", "memo: plugin `bad` check `int_check` returned int from checking a value (int_check), expected str or None"),
        ("memo", "plugin", "memo: plugin `bad` check `raising_check` raised KeyError: 'lookup table not loaded' in checking a value "
                           "(raising_check)"),
        ("extra", "plugin", "extra: plugin `bad` field type `crashing` raised ZeroDivisionError: division by zero in validate"),
    ]
    assert iface.validate_request(msgspec.json.encode(GOOD)).valid  # fields without the bad extensions still validate


def test_a_provider_answering_a_list_is_a_finding_naming_it(with_both, specs: Path) -> None:
    table = specs / "platforms/sample_province/codes/regions.yaml"
    edit(table, 'provider: gbt2260_sample\nsettings: {province: "41"}', "provider: not_a_mapping")
    errors = [str(f) for f in load_specs(specs, strict=False).errors]
    want = (f"specs/platforms/sample_province/codes/regions.yaml:{line_of(table, 'provider:')}: code table `regions`: "
            "plugin `bad` code-table provider `not_a_mapping` returned list from providing a code table, expected a mapping")
    assert want in errors, errors


@pytest.mark.parametrize(("algorithm", "why"), [
    ("explodes", "plugin `bad` signer `explodes` raised ValueError: recipe table missing for this province in sign"),
    ("bytes_sig", "plugin `bad` signer `bytes_sig` returned bytes from sign, expected str"),
])
def test_a_signer_that_raises_or_answers_bytes_is_an_error_naming_it(with_both, algorithm: str, why: str) -> None:
    sig = {"algorithm": algorithm, "key": {"secret": "k"}, "carry": {"in": "header", "name": "sign"}}
    profile = msgspec.convert({"signature": sig}, type=CryptoProfile)
    client = compile_profile(profile, {"k": "key"})
    with pytest.raises(ExtensionCryptoError) as caught:
        client.seal_request(b"{}", {})
    assert str(caught.value) == why and caught.value.plugin == "bad" and caught.value.name == algorithm


async def test_a_twin_refuses_what_its_plugin_signer_cannot_verify(with_both, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(FIXTURES / "bad", specs)
    async with start_twin(specs, "bad_province") as twin, aiohttp.ClientSession() as http, \
            http.post(twin.url + "/api/upload", data=b'{"no": "1"}', headers={"sign": "x"}) as r:
        status, answer = r.status, await r.json()
    # the platform's own error answer (no 500, no traceback), its message naming plugin and signer
    assert status == 200 and answer["code"] == "4001", answer
    assert answer["msg"] == "参数错误: plugin `bad` signer `explodes` raised ValueError: recipe table missing for this province in verify"


async def _settled(rt: BridgeRuntime, ids: list[int], timeout: float = 30.0) -> dict[int, object]:
    assert rt.journal is not None
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        msgs = {i: await rt.journal.get(i) for i in ids}
        if all(m is not None and m.state in (State.SENT, State.DEAD) for m in msgs.values()) or loop.time() > end:
            return msgs  # type: ignore[return-value]
        await asyncio.sleep(0.05)


async def test_the_runtime_sends_dead_what_a_plugin_breaks_and_keeps_serving_the_other_routes(with_both, tmp_path: Path) -> None:
    """Four routes: one through the sample plugin's signer and types (SENT), one signed by a signer that raises,
    one whose check answers an int, one whose plugin transport crashes (each DEAD, its reason naming plugin and
    extension); then the good route again, still SENT."""
    specs = tmp_path / "specs"
    shutil.copytree(FIXTURES / "specs", specs)
    shutil.copytree(FIXTURES / "bad" / "platforms" / "bad_province", specs / "platforms" / "bad_province")
    specset = load_specs(specs)
    keys = {"sample_province_key": "province-key", "bad_province_key": "bad-key"}
    for name, value in keys.items():
        (tmp_path / name).write_text(value, encoding="utf-8")
    retry = RetryConfig(base_s=0.05, max_delay_s=0.2, max_attempts=3)
    async with start_twin(specset, "sample_province", secrets=keys) as good, start_twin(specset, "bad_province", secrets=keys) as bad:
        bridge = Bridge(
            id="plugins", journal=JournalConfig(path=str(tmp_path / "journal.db")),
            secrets={k: f"file:{tmp_path / k}" for k in keys},
            sources={n: Source(adapter="http_json") for n in ("claims", "uploads", "drops")},
            targets={"good": Target(platform="sample_province", base_url=good.url, retry=retry,
                                    headers={"appid": "HOSP01", "timestamp": "1716000000000"}),
                     "bad": Target(platform="bad_province", base_url=bad.url, retry=retry),
                     "drop": Target(platform="sample_province", base_url="http://127.0.0.1:9", transport="bad_send", retry=retry)},
            routes=[Route(id="claims", source="claims", to=[RouteTarget(target="good", interface="uploadClaim")]),
                    Route(id="uploads", source="uploads", to=[RouteTarget(target="bad", interface="upload"),
                                                              RouteTarget(target="bad", interface="checked")]),
                    Route(id="drops", source="drops", to=[RouteTarget(target="drop", interface="uploadClaim")])],
        )
        rt = BridgeRuntime(bridge, specset, load_mappings(specs / "mappings", specset), base_dir=tmp_path)
        await rt.start()
        try:
            ids = [*await rt.receive("claims", GOOD), *await rt.receive("uploads", {"no": "U1", "code": "c"}),
                   *await rt.receive("drops", {**GOOD, "claimNo": "D1"})]
            msgs = await _settled(rt, ids)
            by = {m.interface + "@" + m.target: m for m in msgs.values()}  # type: ignore[attr-defined]
            assert by["sample_province/uploadClaim@good"].state is State.SENT
            dead = {k: (m.state, m.last_error) for k, m in by.items() if k != "sample_province/uploadClaim@good"}
            assert dead == {
                "bad_province/upload@bad": (State.DEAD, "plugin `bad` signer `explodes` raised ValueError: recipe table missing for this "
                                                        "province in sign"),
                "bad_province/checked@bad": (State.DEAD, "invalid for bad_province/checked: code: plugin (code: plugin `bad` check "
                                                         "`int_check` returned int from checking a value (int_check), expected str or "
                                                         "None)"),
                "sample_province/uploadClaim@drop": (State.DEAD, "plugin `bad` transport `bad_send` raised RuntimeError: socket library "
                                                                 "crashed in send"),
            }, dead
            again = await rt.receive("claims", {**GOOD, "claimNo": "C2"})
            assert (await _settled(rt, again))[again[0]].state is State.SENT  # type: ignore[attr-defined]
            assert good.stats()["delivered"] == {"uploadClaim": 2} and bad.stats()["requests"] == {}
            stored = {r.data["claimNo"] for r in good.twin.store.find("claims")}
            assert stored == {"C1", "C2"}
        finally:
            await rt.stop()

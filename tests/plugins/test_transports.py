"""Transports by name: a bridge source's `adapter:` and a target's `transport:` resolve through the same
registry as the built-ins, their settings checked at the bridge file's line."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import yaml

from engine.errors import SpecError
from engine.journal import State
from engine.runtime.serve import Running, open_bridge, start_sources
from engine.twin.serve import start_twin
from tests.plugins.conftest import FIXTURES, line_of

CLAIMS = [{"claimNo": f"C{i}", "cardNo": "4101000000000000", "visitDate": "20240318"} for i in range(3)]


def _bridge(tmp: Path, url: str, **over: object) -> Path:
    (tmp / "key").write_text("province-key", encoding="utf-8")
    doc = {
        "id": "files",
        "journal": {"path": "journal.db"},
        "secrets": {"sample_province_key": f"file:{tmp / 'key'}"},
        "sources": {"drop": {"adapter": "jsonl_file", "settings": {"path": "claims.jsonl"}}},
        "targets": {
            "platform": {"platform": "sample_province", "base_url": url, "headers": {"appid": "HOSP01", "timestamp": "1716000000000"}},
            "archive": {"platform": "sample_province", "base_url": "file:", "transport": "jsonl_file",
                        "transport_settings": {"path": str(tmp / "sent.jsonl")},
                        "headers": {"appid": "HOSP01", "timestamp": "1716000000000"}},
        },
        "routes": [{"id": "claims", "source": "drop", "to": [{"target": "platform", "interface": "uploadClaim"},
                                                             {"target": "archive", "interface": "uploadClaim"}]}],
        **over,
    }
    path = tmp / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


async def test_a_plugin_transport_feeds_a_bridge_and_another_one_delivers(with_sample, tmp_path: Path, monkeypatch) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(FIXTURES / "specs", specs)
    (tmp_path / "claims.jsonl").write_text("\n".join(json.dumps(c) for c in CLAIMS) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    async with start_twin(specs, "sample_province", secrets={"sample_province_key": "province-key"}) as twin:
        runtime, _ = await open_bridge(_bridge(tmp_path, twin.url), specs)
        runtime.base_dir = tmp_path
        await runtime.start()
        running = Running(runtime, await start_sources(runtime, tmp_path))
        try:
            assert runtime.journal is not None
            for _ in range(400):
                st = await runtime.journal.stats()
                if sum(v.get("SENT", 0) + v.get("DEAD", 0) for v in st.values()) >= 6:
                    break
                await asyncio.sleep(0.05)
            assert st == {"sample_province/uploadClaim": {State.SENT: 6}}, st
        finally:
            await running.stop()
    assert twin.stats()["delivered"] == {"uploadClaim": 3}  # the twin verified the plugin signer's signature on each
    sent = [json.loads(line) for line in (tmp_path / "sent.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(json.loads(s["body"])["claimNo"] for s in sent) == ["C0", "C1", "C2"]
    assert all(len(s["headers"]["sign"]) == 64 for s in sent)  # the outbound half got the sealed request


async def test_unknown_transports_and_bad_settings_are_findings_at_the_bridge_file_line(with_sample, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    shutil.copytree(FIXTURES / "specs", specs)
    path = _bridge(tmp_path, "http://127.0.0.1:9", sources={
        "drop": {"adapter": "jsonl_fiel"},
        "view": {"adapter": "dbview", "spec": "sample_province/uploadClaim", "settings": {"database": "h.db", "intervall_s": 1}},
        "his": {"adapter": "http_json", "spec": "sample_province/uploadClaim", "settings": {"port": "eighty"}},
    }, routes=[])
    try:
        await open_bridge(path, specs)
        raise AssertionError("open_bridge accepted a bridge with unknown transports")
    except SpecError as exc:
        got = [str(f) for f in exc.findings]
    assert f"{path}:{line_of(path, 'adapter: jsonl_fiel')}: source `drop`: unknown transport `jsonl_fiel`: no installed plugin " \
           "provides it (known transports: dbview, dicom, form, http_json, jsonl_file, soap)" in got, got
    assert f"{path}:{line_of(path, 'intervall_s')}: source `view`: unknown key `intervall_s` at sources.view.settings.intervall_s " \
           "(settings of plugin `specbridge` transport `dbview`; see `specbridge plugins`)" in got, got
    assert any(g.startswith(f"{path}:{line_of(path, 'port: eighty')}: source `his`: Expected `int`, got `str` at sources.his.settings.port")
               for g in got), got

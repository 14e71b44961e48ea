"""`specbridge run` with an `admin:` section: the server starts, says where, and serves the live bridge;
a bad `admin:` section is one clear line, never a traceback."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
from pathlib import Path

import aiohttp
import msgspec
import pytest
import yaml

from engine.admin.auth import AdminConfigError, resolve_token
from engine.bridge.model import AdminConfig, Bridge, JournalConfig, Route, RouteTarget, Source
from engine.errors import SpecError
from engine.runtime.config import load_bridge
from engine.twin.serve import serve_twin
from tests.admin.conftest import until
from tests.bridge.conftest import CREDENTIALS, ROOT, Twins, example


def _write_bridge(path: Path, bridge: Bridge) -> None:
    path.write_text(yaml.safe_dump(msgspec.to_builtins(bridge), allow_unicode=True, sort_keys=False), encoding="utf-8")


async def _line(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> re.Match[str]:
    while True:
        raw = await asyncio.wait_for(stream.readline(), 60)
        if not raw:
            raise AssertionError(f"`specbridge run` ended before printing {pattern!r}: {seen}")
        seen.append(raw.decode().rstrip())
        if m := re.search(pattern, seen[-1]):
            return m


async def test_run_starts_the_admin_server_on_the_live_bridge(specset, tmp_path: Path) -> None:
    tw = Twins(tmp_path)
    twin = await serve_twin(specset, "wedoctor_supervision", credentials=CREDENTIALS["wedoctor_supervision"])
    tw.running["wedoctor_supervision"] = twin
    token = secrets.token_urlsafe(24)
    bridge = Bridge(id="run-admin", journal=JournalConfig(path=str(tmp_path / "journal.db")), secrets=tw.secrets(),
                    sources={"his_ih": Source(adapter="http_json", spec="hospital_his/online_visit", settings={"port": 0})},
                    targets={"wedoctor": tw.target("wedoctor_supervision", headers={"appid": "{appid}"})},
                    routes=[Route(id="visits", source="his_ih", to=[RouteTarget(target="wedoctor", interface="A2000")])],
                    admin=AdminConfig(token="env:SB_TEST_ADMIN_TOKEN"))
    path = tmp_path / "bridge.yaml"
    _write_bridge(path, bridge)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.cli", "run", str(path), "--specs", str(ROOT / "specs"),
                                                cwd=ROOT, env={**os.environ, "SB_TEST_ADMIN_TOKEN": token},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        source_port = int((await _line(proc.stdout, r"source his_ih: http_json on 127\.0\.0\.1:(\d+)", seen)).group(1))
        admin = (await _line(proc.stdout, r"admin on (http://127\.0\.0\.1:\d+)", seen)).group(1)
        await _line(proc.stdout, r"bridge run-admin running", seen)
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(admin + "/ready") as resp:
                assert resp.status == 200
            async with http.post(f"http://127.0.0.1:{source_port}/his/ih/online-visit",
                                 json=example(specset, "hospital_his/online_visit")) as resp:
                assert resp.status == 200, await resp.text()

            async def sent() -> list[dict]:
                async with http.get(admin + "/api/messages?state=SENT", headers=auth) as resp:
                    assert resp.status == 200
                    return (await resp.json())["items"]

            async def everything() -> list[dict]:
                async with http.get(admin + "/api/messages", headers=auth) as resp:
                    return (await resp.json())["items"]

            try:
                (msg,) = await until(sent)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; journal: {await everything()}") from None
            assert msg["interface"] == "wedoctor_supervision/A2000"
            async with http.get(admin + "/metrics") as resp:
                text = await resp.text()
            assert 'specbridge_messages_sent_total{interface="wedoctor_supervision/A2000",target="wedoctor"} 1.0' in text
            async with http.get(admin + "/api/messages", headers={"Authorization": "Bearer nope"}) as resp:
                assert resp.status == 401
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert proc.stderr is not None
        assert token not in (await proc.stderr.read()).decode() + "\n".join(seen)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await twin.stop()


async def test_run_refuses_an_admin_token_it_cannot_resolve(specset, tmp_path: Path) -> None:
    tw = Twins(tmp_path)
    twin = await serve_twin(specset, "wedoctor_supervision", credentials=CREDENTIALS["wedoctor_supervision"])
    tw.running["wedoctor_supervision"] = twin
    try:
        bridge = Bridge(id="run-admin", journal=JournalConfig(path=str(tmp_path / "journal.db")), secrets=tw.secrets(),
                        sources={"his_ih": Source(adapter="http_json", spec="hospital_his/online_visit", settings={"port": 0})},
                        targets={"wedoctor": tw.target("wedoctor_supervision")},
                        routes=[Route(id="visits", source="his_ih", to=[RouteTarget(target="wedoctor", interface="A2000")])],
                        admin=AdminConfig(token="env:SB_TEST_ADMIN_TOKEN_UNSET"))
        path = tmp_path / "bridge.yaml"
        _write_bridge(path, bridge)
        env = {k: v for k, v in os.environ.items() if k != "SB_TEST_ADMIN_TOKEN_UNSET"}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.cli", "run", str(path), "--specs", str(ROOT / "specs"),
                                                    cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 2
        lines = err.decode().strip().splitlines()
        assert lines == ["specbridge: cannot start the admin server: admin.token: environment variable SB_TEST_ADMIN_TOKEN_UNSET"
                         " is not set"]
    finally:
        await twin.stop()


def test_a_token_written_into_the_bridge_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("id: x\nsources: {}\ntargets: {}\nroutes: []\nadmin:\n  port: 9000\n  token: hunter2hunter2hunter2\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_bridge(path)
    (finding,) = exc.value.findings
    assert finding.line == 7 and "token" in finding.message
    assert "hunter2" not in str(finding)
    path.write_text("id: x\nsources: {}\ntargets: {}\nroutes: []\nadmin: {port: 70000}\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_bridge(path)
    assert exc.value.findings[0].line == 5 and "65535" in exc.value.findings[0].message


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("short\n", encoding="utf-8")
    with pytest.raises(AdminConfigError, match="at least 16 characters"):
        resolve_token("file:t", tmp_path)
    (tmp_path / "t").write_text("a-long-enough-token-value\n", encoding="utf-8")
    assert resolve_token("file:t", tmp_path) == "a-long-enough-token-value"
    assert resolve_token(None, tmp_path) is None


def test_admin_token_command_writes_a_private_file_the_bridge_can_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    path = tmp_path / "var" / "admin.token"
    assert main(["admin-token", str(path)]) == 0
    assert path.stat().st_mode & 0o777 == 0o600
    token = resolve_token(f"file:{path}", tmp_path)
    assert token is not None and len(token) >= 32
    assert token not in capsys.readouterr().out  # the reference is printed, not the token
    assert main(["admin-token", str(path)]) == 2
    assert main(["admin-token", str(path), "--force"]) == 0
    assert resolve_token(f"file:{path}", tmp_path) != token

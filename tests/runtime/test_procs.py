"""Delivery processes (engine/runtime/procs.py) through real parts: a child `python -m engine.runtime.worker`
sharing the SQLite journal, the jilin_imaging twin on loopback (token, SM2 of the ID number)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from engine.bridge.model import Bridge, DeliveryConfig, JournalConfig, Route, RouteTarget, Source
from engine.errors import SpecbridgeError
from engine.journal import Journal, State
from engine.runtime.bridge import BridgeRuntime
from engine.runtime.procs import plan
from tests.bridge.conftest import ROOT, example

EXAM = "savePatientExam"


def record(specset: Any, n: int) -> dict[str, Any]:
    return {**example(specset, "hospital_pacs/exam_report"), "REPORT_ID": f"R{n:05d}", "ACCESSION_NO": f"A{n:05d}"}


def bridge_for(twins: Any, tmp: Path, processes: int = 1, targets: tuple[str, ...] = ("jilin",)) -> Bridge:
    return Bridge(
        id="procs", journal=JournalConfig(path=str(tmp / "journal.db")), secrets=twins.secrets(),
        sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
        targets={t: twins.target("jilin_imaging", concurrency=4) for t in targets},
        routes=[Route(id="exams", source="pacs", to=[RouteTarget(target=t, interface=EXAM) for t in targets])],
        delivery=DeliveryConfig(processes=processes),
    )


async def started(bridge: Bridge, specset: Any, mappings: Any, tmp: Path) -> BridgeRuntime:
    rt = BridgeRuntime(bridge, specset, mappings, base_dir=tmp, specs_dir=ROOT / "specs")
    await rt.start()
    return rt


async def until(pred: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


def deliveries(twin: Any) -> dict[str, int]:
    return dict(twin.stats()["deliveries"].get(EXAM, {}))


async def test_a_delivery_process_sends_and_reports_back(twins, specset, mappings, tmp_path: Path) -> None:
    twin = await twins.start("jilin_imaging")
    rt = await started(bridge_for(twins, tmp_path), specset, mappings, tmp_path)
    try:
        assert rt.procs is not None and not rt.runs_here("jilin")
        [child] = rt.procs.children
        assert child.proc is not None and child.proc.pid != os.getpid()
        ids = [i for n in range(40) for i in await rt.receive("pacs", record(specset, n))]
        await until(lambda: rt.stats.sent.get("jilin", 0) == 40)  # counted from the child's reports
        assert len(deliveries(twin)) == 40 and set(deliveries(twin).values()) == {1}
        assert rt.journal is not None
        for mid in ids:
            m = await rt.journal.get(mid)
            assert m is not None and m.state is State.SENT and m.history[-1].outcome == "ok"
        assert "jilin" in rt.token_states() and rt.token_states()["jilin"][0] >= 1  # its token, obtained in the child
        assert rt.not_ready() is None
    finally:
        await rt.stop()
    assert child.proc.returncode == 0  # asked to stop, drained, exited


async def test_pause_and_resume_reach_the_delivery_process(twins, specset, mappings, tmp_path: Path) -> None:
    twin = await twins.start("jilin_imaging")
    rt = await started(bridge_for(twins, tmp_path), specset, mappings, tmp_path)
    try:
        await rt.receive("pacs", record(specset, 0))
        await until(lambda: rt.stats.sent.get("jilin", 0) == 1)
        await rt.pause("exams")
        ids = [i for n in range(1, 6) for i in await rt.receive("pacs", record(specset, n))]
        await asyncio.sleep(0.5)
        assert len(deliveries(twin)) == 1  # held in the journal
        assert rt.journal is not None
        assert {(await rt.journal.get(i)).state for i in ids} == {State.TRANSLATED}  # type: ignore[union-attr]
        await rt.resume("exams")
        await until(lambda: rt.stats.sent.get("jilin", 0) == 6)
        assert len(deliveries(twin)) == 6
    finally:
        await rt.stop()


async def test_a_delivery_process_that_dies_is_started_again(twins, specset, mappings, tmp_path: Path) -> None:
    twin = await twins.start("jilin_imaging")
    rt = await started(bridge_for(twins, tmp_path), specset, mappings, tmp_path)
    try:
        assert rt.procs is not None
        [child] = rt.procs.children
        assert child.proc is not None
        first = child.proc.pid
        child.proc.send_signal(signal.SIGKILL)
        await until(lambda: rt.not_ready() is not None, 10)
        assert "delivery process 1 (jilin)" in (rt.not_ready() or "")
        ids = [i for n in range(10) for i in await rt.receive("pacs", record(specset, n))]  # journalled due meanwhile
        await until(lambda: child.ready and child.proc is not None and child.proc.pid != first, 30)
        await until(lambda: rt.stats.sent.get("jilin", 0) == 10, 30)  # recorded (the twin counts a delivery before that)
        assert len(deliveries(twin)) == 10 and set(deliveries(twin).values()) == {1}
        assert rt.journal is not None
        assert {(await rt.journal.get(i)).state for i in ids} == {State.SENT}  # type: ignore[union-attr]
        assert child.exits == 1 and rt.not_ready() is None
    finally:
        await rt.stop()


def test_plan_keeps_synchronous_targets_home_and_shares_the_rest() -> None:
    b = msgspec.convert({
        "id": "p", "delivery": {"processes": 2},
        "sources": {"his": {"adapter": "http_json"}, "lis": {"adapter": "dbview"}},
        "targets": {n: {"platform": "pe_system", "base_url": "http://127.0.0.1:1"} for n in ("a", "b", "c", "q")},
        "routes": [{"id": "ask", "source": "his", "reply": "sync", "to": [{"target": "q", "interface": "x"}]},
                   {"id": "push", "source": "lis", "to": [{"target": n, "interface": "y"} for n in ("a", "b", "c", "q")]}],
    }, Bridge)
    assert plan(b) == {"a": 0, "b": 1, "c": 0}  # q answers a synchronous route: it stays in the bridge's process
    b0 = msgspec.structs.replace(b, delivery=DeliveryConfig(processes=0))
    assert plan(b0) == {}


async def test_the_delivery_process_ends_with_a_killed_bridge(twins, specset, tmp_path: Path) -> None:
    """SIGKILL of `specbridge run` leaves no orphan: the child reads end of input and stops."""
    await twins.start("jilin_imaging")
    bridge = msgspec.to_builtins(bridge_for(twins, tmp_path))
    bridge["sources"]["pacs"]["settings"] = {"database": str(tmp_path / "none.db"), "interval_s": 5}
    bfile = tmp_path / "bridge.yaml"
    bfile.write_text(yaml.safe_dump(bridge, allow_unicode=True), encoding="utf-8")
    import sqlite3

    con = sqlite3.connect(tmp_path / "none.db")
    con.execute("CREATE VIEW V_RIS_EXAM_REPORT AS SELECT 1 AS REPORT_ID, '' AS UPDATE_TIME WHERE 0")
    con.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", "run", str(bfile), "--specs", str(ROOT / "specs"), "--no-reload",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        lines = []
        while b"running" not in (line := await asyncio.wait_for(proc.stdout.readline(), 60)):
            assert line, b"".join(lines).decode()
            lines.append(line)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        child = int(children[0])
        # `run` picks uvloop (installed with the engine) and starts its delivery process on the same loop
        assert b"event loop: uvloop\n" in lines, b"".join(lines).decode()
        assert Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[3:5] == [b"--loop", b"uvloop"]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await until(lambda: not Path(f"/proc/{child}").exists() or "Z" in _state(child), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    async with await Journal.open(str(tmp_path / "journal.db")) as j:  # and the journal is whole
        assert await j.stats() == {}


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


async def test_a_delivery_process_that_cannot_start_fails_the_start_with_its_reason(twins, specset, mappings, tmp_path: Path) -> None:
    await twins.start("jilin_imaging")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "broken.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    rt = BridgeRuntime(bridge_for(twins, tmp_path), specset, mappings, base_dir=tmp_path, specs_dir=tmp_path / "specs")
    try:
        with pytest.raises(SpecbridgeError, match=r"delivery process 1 \(jilin\) could not start: "):
            await rt.start()
    finally:
        await rt.stop()


async def test_a_hot_reload_restarts_the_delivery_processes_and_refuses_to_move_them(twins, specset, mappings, tmp_path: Path) -> None:
    twin = await twins.start("jilin_imaging")
    bridge = bridge_for(twins, tmp_path)
    rt = await started(bridge, specset, mappings, tmp_path)
    try:
        assert rt.procs is not None
        [before] = rt.procs.children
        assert before.proc is not None
        old_pid = before.proc.pid
        with pytest.raises(SpecbridgeError, match="delivery settings changed"):
            rt.swap(msgspec.structs.replace(bridge, delivery=DeliveryConfig(processes=2)), specset, mappings)
        sync = msgspec.structs.replace(bridge, routes=[*bridge.routes, Route(id="ask", source="pacs", reply="sync",
                                                                            to=[RouteTarget(target="jilin", interface=EXAM)])])
        with pytest.raises(SpecbridgeError, match=r"target\(s\) jilin would move"):
            rt.swap(sync, specset, mappings)
        slower = msgspec.structs.replace(bridge, targets={"jilin": msgspec.structs.replace(bridge.targets["jilin"], concurrency=2)})
        out = rt.swap(slower, specset, mappings)
        assert out["changed"] == ["jilin"]
        await until(lambda: bool(rt.procs and rt.procs.children and rt.procs.children[0].ready
                                 and rt.procs.children[0].proc is not None and rt.procs.children[0].proc.pid != old_pid), 30)
        await rt.receive("pacs", record(specset, 1))
        await until(lambda: rt.stats.sent.get("jilin", 0) == 1)
        assert len(deliveries(twin)) == 1
    finally:
        await rt.stop()

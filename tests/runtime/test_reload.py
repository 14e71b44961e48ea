"""Hot reload through real parts: a SQLite journal, a view poller on a real hospital database, a
platform twin on loopback, and spec and bridge files edited on disk while records flow."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import shutil
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from engine.bridge.model import Bridge, JournalConfig, Route, RouteTarget, Source
from engine.journal import State
from engine.journal.model import Summary
from engine.runtime.bridge import BridgeRuntime
from engine.runtime.reload import Reloader, load_checked
from engine.runtime.serve import start_sources
from engine.spec.model import Condition
from tests.bridge.conftest import ROOT, example

SPEC = "platforms/jilin_imaging/interfaces/savePatientExam.yaml"
WIDE = "accessNumber: {type: string, length: 100,"
NARROW = "accessNumber: {type: string, length: 12,"


def copy_specs(tmp: Path) -> Path:
    return Path(shutil.copytree(ROOT / "specs", tmp / "specs"))


def edit(path: Path, old: str, new: str) -> int:
    """Replace the one `old` in the file; returns its line number."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path}: {old!r}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def write_bridge(path: Path, bridge: Bridge) -> None:
    path.write_bytes(msgspec.yaml.encode(bridge))


class Hospital:
    """The PACS's report view in a real SQLite file, written as the hospital would (WAL: the poller
    reads while rows are added). REPORT_ID grows, so rows are read in the order they are added."""

    def __init__(self, path: Path, specset: Any) -> None:
        self.base = {k: v for k, v in example(specset, "hospital_pacs/exam_report").items() if k != "REPORT_PDF"}
        self.cols = list(self.base)
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute(f"CREATE TABLE RIS_EXAM_REPORT ({', '.join(self.cols)}, PRIMARY KEY (REPORT_ID))")
        self.con.execute(f"CREATE VIEW V_RIS_EXAM_REPORT AS SELECT {', '.join(self.cols)} FROM RIS_EXAM_REPORT")
        self.n = itertools.count()

    def add(self, *, long: bool = False, hold: bool = False) -> str:
        """One audited report; returns its accession number (15 characters when `long`)."""
        i = next(self.n)
        row = {**self.base, "REPORT_ID": f"R{i:06d}", "ACCESSION_NO": f"LONGACC{i:08d}" if long else f"A{i:05d}"}
        if hold:
            row["EXAM_METHOD"] = "HOLD"
        self.con.execute(f"INSERT INTO RIS_EXAM_REPORT VALUES ({', '.join('?' * len(self.cols))})", [row[c] for c in self.cols])
        return row["ACCESSION_NO"]


def pacs_bridge(twins: Any) -> Bridge:
    source = Source(adapter="dbview", spec="hospital_pacs/exam_report",
                    settings={"database": "hospital.db", "state": "var/pacs.cursor.db", "interval_s": 0.05})
    return Bridge(id="reload", journal=JournalConfig(path="var/journal.db"), secrets=twins.secrets(), sources={"pacs": source},
                  targets={"jilin": twins.target("jilin_imaging", concurrency=2)},
                  routes=[Route(id="exams", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam")])])


def delivered(twin: Any) -> dict[str, int]:
    """What the twin accepted, by accession number (its natural key is hospitalCode|accessNumber)."""
    got = twin.stats()["deliveries"].get("savePatientExam", {})
    return {k.rpartition("|")[2]: n for k, n in got.items()}


async def journalled(rt: BridgeRuntime) -> dict[str, Summary]:
    assert rt.journal is not None
    return {(s.key or "").rpartition("|")[2]: s for s in await rt.journal.search(limit=10_000)}


async def until(cond: Callable[[], Any], timeout: float = 30.0) -> None:
    """Until `cond()` (awaited if it is a coroutine function) holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not (await cond() if inspect.iscoroutinefunction(cond) else cond()):
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def bridge_running(tmp: Path, bridge_path: Path, specs: Path, *,
                         interval_s: float | None = 0.1) -> AsyncIterator[tuple[BridgeRuntime, Reloader, list[str]]]:
    """What `specbridge run` starts, in this process: the runtime, its sources and the reloader."""
    cfg = load_checked(bridge_path, specs)
    rt = BridgeRuntime(cfg.bridge, cfg.specset, cfg.mappings, base_dir=tmp)
    await rt.start()
    sources = await start_sources(rt, tmp)
    lines: list[str] = []
    reloader = Reloader(rt, bridge_path, specs, sources, interval_s=interval_s, announce=lines.append)
    await reloader.start()
    try:
        yield rt, reloader, lines
    finally:
        await reloader.stop()
        for src in sources.values():
            await src.stop()
        await rt.stop()


async def test_records_keep_flowing_while_a_spec_and_a_bridge_change_are_swapped_in(twins, specset, tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    jilin = await twins.start("jilin_imaging")
    hospital = Hospital(tmp_path / "hospital.db", specset)
    bridge = pacs_bridge(twins)
    bridge_path = tmp_path / "bridge.yaml"
    write_bridge(bridge_path, bridge)
    async with bridge_running(tmp_path, bridge_path, specs) as (rt, reloader, lines):
        poller = reloader.sources["pacs"]
        normal: list[str] = []
        writing = asyncio.Event()
        writing.set()

        async def writer() -> None:  # the hospital never stops writing reports
            while writing.is_set():
                normal.append(hospital.add())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(writer())
        before = [hospital.add(long=True), hospital.add(hold=True)]  # both pass under the running configuration
        await until(lambda: all(a in delivered(jilin) for a in before))
        edit(specs / SPEC, WIDE, NARROW)  # the platform now takes 12 characters at most
        bridge.targets["jilin"].concurrency = 3
        bridge.routes[0].to[0].when = Condition(field="EXAM_METHOD", not_in=["HOLD"])  # held exams stay home
        bridge.sources["pacs"].settings["interval_s"] = 0.04  # restarts the poller
        write_bridge(bridge_path, bridge)
        await until(lambda: rt.reloads >= 1 and rt.bridge.targets["jilin"].concurrency == 3)
        assert rt.specset.interface("jilin_imaging/savePatientExam").spec.request.fields["accessNumber"].length == 12
        assert reloader.sources["pacs"] is not poller and reloader.sources["pacs"].poller.interval_s == 0.04
        after_long, after_hold = hospital.add(long=True), hospital.add(hold=True)
        writing.clear()
        await task
        normal.append(hospital.add())  # read after the two above: the view is read in order
        await until(lambda: all(a in delivered(jilin) for a in normal))
        await until(lambda: rt.stats.dead.get("jilin", 0) == 1)
        got = delivered(jilin)
        msgs = await journalled(rt)
    assert len(normal) > 10
    assert {a: got.get(a) for a in [*before, *normal]} == dict.fromkeys([*before, *normal], 1)  # each exactly once
    assert jilin.stats()["duplicates"] == {} and rt.stats.duplicates == 0  # the restarted poller re-read nothing
    assert after_long not in got and msgs[after_long].state is State.DEAD  # the new length rule
    assert "accessNumber" in (msgs[after_long].last_error or "")
    assert after_hold not in got and after_hold not in msgs  # the new route filter: never journalled
    assert jilin.stats()["tokens"]["issued_today"] == 1  # the token outlived the client it was fetched by
    said = " | ".join(lines)
    for part in ("targets changed jilin (token kept: jilin)", "routes changed exams", "sources restarted pacs",
                 "platform specs changed jilin_imaging"):
        assert part in said, said
    assert rt.reloads >= 1 and rt.reload_failures == 0


async def test_a_broken_spec_or_bridge_is_refused_with_its_line_and_the_running_one_kept(
    twins, specset, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.ERROR, logger="specbridge.reload")
    specs = copy_specs(tmp_path)
    jilin = await twins.start("jilin_imaging")
    hospital = Hospital(tmp_path / "hospital.db", specset)
    bridge = pacs_bridge(twins)
    bridge_path = tmp_path / "bridge.yaml"
    write_bridge(bridge_path, bridge)
    async with bridge_running(tmp_path, bridge_path, specs) as (rt, reloader, _lines):
        running = rt.specset
        line = edit(specs / SPEC, WIDE, WIDE.replace("length", "lenght"))  # a misspelt key
        await until(lambda: rt.reload_failures == 1)
        where = f"specs/{SPEC}:{line}"
        assert rt.specset is running and rt.reloads == 0
        assert rt.last_reload_error is not None and where in rt.last_reload_error and "lenght" in rt.last_reload_error
        assert any(r.levelno == logging.ERROR and where in r.getMessage() and "keeps its running configuration" in r.getMessage()
                   for r in caplog.records)
        acc = hospital.add()  # the running configuration keeps delivering
        await until(lambda: acc in delivered(jilin))

        edit(specs / SPEC, "lenght: 100,", "length: 12,")  # fixed (and narrowed): taken
        await until(lambda: rt.reloads == 1)
        assert rt.last_reload_error is None and rt.specset is not running
        assert rt.specset.interface("jilin_imaging/savePatientExam").spec.request.fields["accessNumber"].length == 12

        bline = edit(bridge_path, "concurrency: 2", "concurency: 3")  # now the bridge file
        await until(lambda: rt.reload_failures == 2)
        assert f"{bridge_path}:{bline}" in (rt.last_reload_error or "") and rt.bridge.targets["jilin"].concurrency == 2
        acc2 = hospital.add()
        await until(lambda: acc2 in delivered(jilin))

        edit(bridge_path, "concurency: 3", "concurrency: 3")
        await until(lambda: rt.reloads == 2)
        assert rt.bridge.targets["jilin"].concurrency == 3 and rt.targets["jilin"].target.concurrency == 3
        acc3 = hospital.add()
        await until(lambda: acc3 in delivered(jilin))

        # checks clean but cannot start (the view's database is not there): put back as it was
        edit(bridge_path, "database: hospital.db", "database: missing.db")
        await until(lambda: rt.reload_failures == 3)
        assert "unable to open database file" in (rt.last_reload_error or ""), rt.last_reload_error
        assert rt.bridge.sources["pacs"].settings["database"] == "hospital.db" and rt.reloads == 2
        assert reloader.sources["pacs"].poller.interval_s == 0.05  # the old poller, started again
        acc4 = hospital.add()
        await until(lambda: acc4 in delivered(jilin))
    assert delivered(jilin) == dict.fromkeys([acc, acc2, acc3, acc4], 1)
    assert rt.stats.duplicates == 0  # the poller stopped and started twice, and read nothing again


async def test_sighup_or_a_reload_call_takes_a_change_when_watching_is_off(twins, specset, tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    jilin = await twins.start("jilin_imaging")
    hospital = Hospital(tmp_path / "hospital.db", specset)
    bridge = pacs_bridge(twins)
    bridge_path = tmp_path / "bridge.yaml"
    write_bridge(bridge_path, bridge)
    loop = asyncio.get_running_loop()
    async with bridge_running(tmp_path, bridge_path, specs, interval_s=None) as (rt, reloader, lines):
        loop.add_signal_handler(signal.SIGHUP, reloader.request)
        try:
            bridge.targets = {"jilin_b": bridge.targets["jilin"]}  # the target renamed: one removed, one added
            bridge.routes[0].to[0].target = "jilin_b"
            write_bridge(bridge_path, bridge)
            first = hospital.add()
            await until(lambda: first in delivered(jilin))
            assert rt.reloads == 0 and "jilin" in rt.bridge.targets  # not watching: the edit waits for a signal

            os.kill(os.getpid(), signal.SIGHUP)
            await until(lambda: rt.reloads == 1)
            assert "targets added jilin_b" in lines[0] and "targets removed jilin" in lines[0], lines
            assert rt.not_ready() is None  # every delivery loop runs (a draining one too)
            await until(lambda: "jilin" not in rt.targets)  # the removed target's loop drained and its client closed
            assert rt.not_ready() is None
            second = hospital.add()

            async def second_sent() -> bool:
                got = (await journalled(rt)).get(second)
                return got is not None and got.state is State.SENT

            await until(second_sent)  # recorded once the platform's answer is in
            msgs = await journalled(rt)
            assert msgs[first].target == "jilin" and msgs[second].target == "jilin_b"
            assert delivered(jilin) == dict.fromkeys([first, second], 1)

            assert await reloader.reload() is True
            assert rt.reloads == 2 and lines[-1].endswith("no effective change"), lines
        finally:
            loop.remove_signal_handler(signal.SIGHUP)


async def _line_with(stream: asyncio.StreamReader, text: str, seen: list[str], timeout: float = 60.0) -> str:
    async def read() -> str:
        while True:
            raw = await stream.readline()
            assert raw, f"stream ended before {text!r}: {seen}"
            line = raw.decode(errors="replace").rstrip()
            seen.append(line)
            if text in line:
                return line

    return await asyncio.wait_for(read(), timeout)


async def test_specbridge_run_reloads_an_edited_bridge_file_and_exits_cleanly_on_sigterm(twins, specset, tmp_path: Path) -> None:
    copy_specs(tmp_path)
    jilin = await twins.start("jilin_imaging")
    hospital = Hospital(tmp_path / "hospital.db", specset)
    bridge = pacs_bridge(twins)
    bridge_path = tmp_path / "bridge.yaml"
    write_bridge(bridge_path, bridge)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", "run", "bridge.yaml", "--specs", "specs", "--reload-interval", "0.1",
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out: list[str] = []
    err: list[str] = []
    try:
        assert proc.stdout is not None and proc.stderr is not None
        await _line_with(proc.stdout, "running", out)
        first = hospital.add()
        await until(lambda: first in delivered(jilin))

        bridge.targets["jilin"].concurrency = 3
        write_bridge(bridge_path, bridge)
        line = await _line_with(proc.stderr, "reloaded bridge reload", err)  # the INFO log line
        assert "targets changed jilin (token kept: jilin)" in line, line

        bline = edit(bridge_path, "concurrency: 3", "concurency: 4")
        refused = await _line_with(proc.stderr, "reload refused", err)
        assert f"error(s): bridge.yaml:{bline}: unknown key `concurency`" in refused, refused
        second = hospital.add()  # still running, on the configuration it had
        await until(lambda: second in delivered(jilin))

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert delivered(jilin) == dict.fromkeys([first, second], 1)

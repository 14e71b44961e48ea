"""Crash test: 5,000 records, a twin failing one request in ten, the engine SIGKILLed twice mid-flow.

The engine runs as a real `specbridge run` subprocess reading a real SQLite view; the twin runs
in this process and counts what reaches it. Afterwards every record is delivered; the twin holds
each natural key once; and the journal shows each message's history.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import sqlite3
import sys
from pathlib import Path

import msgspec
import yaml

from engine.journal import Journal
from tests.bridge.conftest import ROOT, example

N = 5000
CONCURRENCY = 8


def write_view(db: Path, rows: list[dict]) -> None:
    cols = list(rows[0])
    con = sqlite3.connect(db)
    con.execute(f"CREATE TABLE exam ({', '.join(cols)})")
    con.executemany(f"INSERT INTO exam VALUES ({', '.join('?' for _ in cols)})", [[r[c] for c in cols] for r in rows])
    con.execute("CREATE VIEW V_RIS_EXAM_REPORT AS SELECT * FROM exam")
    con.commit()
    con.close()


async def deliveries(twin) -> int:
    return sum(twin.stats()["deliveries"].get("savePatientExam", {}).values())


async def start_engine(bridge: Path, cwd: Path, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", "run", str(bridge), "--specs", str(ROOT / "specs"),
        cwd=cwd, env=env, stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT,
    )


async def wait_for(pred, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await pred():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_sigkill_twice_mid_flow_loses_nothing(twins, specset, tmp_path: Path) -> None:
    twin = await twins.start("jilin_imaging", fail_every=10)
    base = example(specset, "hospital_pacs/exam_report")
    rows = []
    for i in range(N):
        r = copy.deepcopy(base)
        r["REPORT_ID"] = f"R{i:07d}"
        r["ACCESSION_NO"] = f"ACC{i:07d}"
        r["UPDATE_TIME"] = f"2024-05-11 {8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        rows.append(r)
    write_view(tmp_path / "hospital.db", rows)
    target = twins.target("jilin_imaging", concurrency=CONCURRENCY)
    bridge = {
        "id": "crash",
        "journal": {"path": "journal.db"},
        "secrets": twins.secrets(),
        "sources": {"pacs": {"adapter": "dbview", "spec": "hospital_pacs/exam_report",
                             "settings": {"database": "hospital.db", "interval_s": 0.2}}},
        "targets": {"jilin": msgspec.to_builtins(target)},
        "routes": [{"id": "exams", "source": "pacs", "to": [{"target": "jilin", "interface": "savePatientExam"}]}],
    }
    bfile = tmp_path / "bridge.yaml"
    bfile.write_text(yaml.safe_dump(bridge, allow_unicode=True), encoding="utf-8")
    log = tmp_path / "engine.log"
    kills = 0
    for stop_at in (N // 5, N // 2):
        proc = await start_engine(bfile, tmp_path, log)
        reached = await wait_for(lambda s=stop_at: _ge(deliveries(twin), s), timeout=120)
        assert reached, log.read_text(encoding="utf-8")[-3000:]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        kills += 1
    proc = await start_engine(bfile, tmp_path, log)
    try:
        async def all_sent() -> bool:
            async with await Journal.open(str(tmp_path / "journal.db")) as j:
                st = await j.stats()
            return st.get("jilin_imaging/savePatientExam", {}).get("SENT", 0) == N

        assert await wait_for(all_sent, timeout=240), log.read_text(encoding="utf-8")[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert kills == 2
    stats = twin.stats()
    keys = stats["deliveries"]["savePatientExam"]
    assert len(keys) == N  # every record reached the platform, under its own natural key
    assert len(twin.twin.store.find("exams")) == N  # and is stored once
    resent = sum(n - 1 for n in keys.values() if n > 1)
    # At-least-once: only a send in flight at the moment of a SIGKILL can reach the twin twice.
    assert resent <= 2 * CONCURRENCY * 2, resent
    assert stats["injected"], "the twin injected failures"
    async with await Journal.open(str(tmp_path / "journal.db")) as j:
        st = await j.stats()
        assert st == {"jilin_imaging/savePatientExam": {"SENT": N}}
        retried = await j.search(interface="jilin_imaging/savePatientExam", limit=N)
        histories = [await j.get(h.id) for h in retried[:300]]
        assert any(len(m.history) > 1 for m in histories if m is not None)  # injected failures were retried
        assert all(m.history[-1].outcome == "ok" for m in histories if m is not None)


async def _ge(coro, n: int) -> bool:
    return (await coro) >= n



"""Crash test: 5,000 records, a twin failing one request in ten, the engine SIGKILLed twice mid-flow.

The engine runs as a real `specbridge run` subprocess reading a real SQLite view; the twin runs
in this process and counts what reaches it. Afterwards every record is delivered, none twice: a send
in flight at a kill is in doubt after the restart, and savePatientExam's `reconcile:` asks the platform
(queryFormerlyExam, by each row's own patient) before sending it again. The journal shows each
message's history, the reconciled ones included.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import msgspec
import yaml

from engine.demo.people import person_name, resident_id
from engine.journal import Journal
from tests.bridge.conftest import ROOT, example

N = 5000
CONCURRENCY = 8
IN_FLIGHT = CONCURRENCY // 2
"""Sends the platform holds, unanswered, when each SIGKILL lands (at least)."""


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
    rng = random.Random(6)
    for i in range(N):
        r = copy.deepcopy(base)
        r["REPORT_ID"] = f"R{i:07d}"
        r["ACCESSION_NO"] = f"ACC{i:07d}"
        # each row its own patient (a birth date per row makes every ID number unique), so a
        # reconciliation query finds that patient's one exam, not 5,000
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=i)
        r["PATIENT_ID"], r["PATIENT_NAME"] = f"P{i:07d}", person_name(rng, "F")
        r["BIRTH_DATE"], r["ID_CARD"] = f"{birth:%Y-%m-%d}", resident_id("110105", birth, "F", rng)
        r["UPDATE_TIME"] = f"2024-05-11 {8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        rows.append(r)
    write_view(tmp_path / "hospital.db", rows)
    target = twins.target("jilin_imaging", concurrency=CONCURRENCY, timeout_s=7)  # above the 5 s answers held at a kill
    bridge = {
        "id": "crash",
        # what a kill leaves claimed is due again after 15 s, not the default 60 (check: at least twice timeout_s)
        "journal": {"path": "journal.db", "lease_s": 15},
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
        # the kill lands while sends are on the wire: the twin has stored them and holds their answers
        twin.twin.options.answer_delay_s = 5.0
        held = await deliveries(twin) + IN_FLIGHT
        assert await wait_for(lambda h=held: _ge(deliveries(twin), h), timeout=30)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        twin.twin.options.answer_delay_s = 0.0
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
    assert resent == 0, stats["duplicates"]  # exactly once: what a kill left in doubt was asked about, not resent
    assert stats["injected"], "the twin injected failures"
    assert stats["requests"].get("queryFormerlyExam", 0) > 0, "the restarts found sends in doubt and asked the platform"
    with sqlite3.connect(tmp_path / "journal.db") as c:
        ok, reconciled, in_doubt = (c.execute(f"SELECT count(DISTINCT message_id) FROM attempts WHERE {w}").fetchone()[0] for w in (
            "outcome = 'ok'", "outcome = 'reconciled'", "outcome IN ('reconciled', 'in_doubt')"))
        asked = c.execute("SELECT count(*) FROM attempts WHERE error LIKE 'in doubt: queryFormerlyExam failed:%'").fetchone()[0]
    # every twin delivery is in the journal once: as a send the engine saw answered, or as one reconciled after a kill
    assert ok + reconciled == N and in_doubt >= reconciled, (ok, reconciled, in_doubt)
    assert reconciled >= 2 * IN_FLIGHT, (reconciled, in_doubt, asked)  # the sends on the wire at the kills were found, not resent
    async with await Journal.open(str(tmp_path / "journal.db")) as j:
        st = await j.stats()
        assert st == {"jilin_imaging/savePatientExam": {"SENT": N}}
        retried = await j.search(interface="jilin_imaging/savePatientExam", limit=N)
        histories = [await j.get(h.id) for h in retried[:300]]
        assert any(len(m.history) > 1 for m in histories if m is not None)  # injected failures were retried
        assert all(m.history[-1].outcome == "ok" for m in histories if m is not None)


async def _ge(coro, n: int) -> bool:
    return (await coro) >= n



"""dbview and DICOM throughput (issue 5), on real files and real associations over loopback.

    .venv/bin/python bench/dbview_dicom.py [--rows 5000] [--instances 200]

- poll: rows/s a ViewPoller delivers from a SQLite view to a no-op Sink, the cursor saved (one
  synchronous commit) after every acknowledged row, as in production;
- upsert: rows/s the ViewStore writes into xinjiang_mr's v_web_jcjg (validated against the spec);
- store_*: C-STORE instances/s into our SCP (spool write + fsync + Sink round trip per instance),
  sent in one association by dcmtk's storescu (as Debian builds it, Nagle stays on unless the
  environment says TCP_NODELAY=1: each instance then waits ~40 ms for a delayed ACK), and by our SCU
  (which sets TCP_NODELAY, as our SCP does).

Prints readable lines, then one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.base import InboundMessage, Reply
from adapters.dbview import ViewPoller
from adapters.dicom import DicomScp, DicomScu
from adapters.dicom_files import synthetic_study
from adapters.sqlite_db import SqliteDatabase
from adapters.viewstore import ViewStore
from engine.spec import load_specs
from engine.spec.model import ViewBinding

OK = Reply(b"{}")


async def sink(msg: InboundMessage) -> Reply:
    return OK


async def bench_poll(d: Path, rows: int) -> float:
    c = sqlite3.connect(d / "his.db")
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t (sop TEXT, created TEXT, pid TEXT)")
    c.execute("CREATE VIEW v AS SELECT sop AS K, created AS W, pid AS P FROM t")
    c.executemany(
        "INSERT INTO t VALUES (?, ?, 'SYN')",
        [(f"1.2.3.{i:08d}", f"2024-05-11 08:{i // 600 % 60:02d}:{i // 10 % 60:02d}") for i in range(rows)],
    )
    c.commit()
    c.close()
    db = await SqliteDatabase.open(d / "his.db", readonly=True)
    p = ViewPoller("bench/v", ViewBinding(name="v", key=["K"], watermark="W"), db, d / "state.db", batch=500)
    t0 = time.perf_counter()
    await p.poll_once(sink)
    dt = time.perf_counter() - t0
    await p.stop()
    await db.close()
    return rows / dt


async def bench_upsert(d: Path, rows: int) -> float:
    ci = load_specs("specs", strict=False).interface("xinjiang_mr/v_web_jcjg")
    store = await ViewStore.open(d / "views.db", [ci])
    base = {
        "FILEPATH": "/spool/1.dcm",
        "CREATEDTIME": "2024-05-11 08:40:12",
        "STUDIUIID": "1.2.3",
        "STUDYDATE": "2024-05-11 08:17:34",
        "SERIESIUID": "1.2.3.1",
        "SERIESNO": "1",
        "INSTANCEINSTNO": "1",
        "PATIENTNAME": "SYNTHETIC",
        "ACCESS_NO": "A1",
        "PATIENT_ID": "SYN0001",
        "MODALITY": "CT",
        "INSTITUTIONNAME": "Synthetic Hospital",
        "INSTITUTIONCODE": "000000000",
        "FILESIZE": 1234,
    }
    batch = [{**base, "INSTANCESOPIUID": f"1.2.3.1.{i}"} for i in range(rows)]
    t0 = time.perf_counter()
    for i in range(0, rows, 100):
        await store.upsert(ci.qualified_id, batch[i : i + 100])
    dt = time.perf_counter() - t0
    await store.close()
    return rows / dt


async def storescu(port: int, files: list[Path], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    argv = ["/usr/bin/storescu", "-aec", "SPECBRIDGE", "127.0.0.1", str(port), *map(str, files)]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL, env={**os.environ, **env})
    assert await proc.wait() == 0
    return len(files) / (time.perf_counter() - t0)


async def bench_dicom(d: Path, n: int) -> tuple[float, float, float]:
    files = synthetic_study(d / "out", count=n, size=64)
    scp = DicomScp("bench/C-STORE", d / "spool", sink_timeout_s=30)
    await scp.start(sink)
    try:
        dcmtk = await storescu(scp.port, files, {})
        dcmtk_nodelay = await storescu(scp.port, files, {"TCP_NODELAY": "1"})
        t0 = time.perf_counter()
        statuses = await DicomScu("127.0.0.1", scp.port, called_ae="SPECBRIDGE").store(files)
        ours = n / (time.perf_counter() - t0)
        assert statuses == [0] * n and sum(1 for o in scp.outcomes if o.status == 0) == 3 * n
    finally:
        await scp.stop()
    return dcmtk, dcmtk_nodelay, ours


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--instances", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        poll = await bench_poll(d, a.rows)
        print(f"poll: {poll:,.0f} rows/s ({a.rows} rows, cursor saved per row)")
        upsert = await bench_upsert(d, a.rows)
        print(f"upsert: {upsert:,.0f} rows/s (validated, batches of 100)")
        dcmtk, dcmtk_nodelay, ours = await bench_dicom(d, a.instances)
        print(
            f"C-STORE ({a.instances} x 8 KiB-pixel CT): dcmtk storescu {dcmtk:,.0f}/s (Nagle on, its default),"
            f" {dcmtk_nodelay:,.0f}/s with TCP_NODELAY=1; our SCU {ours:,.0f}/s"
        )
    out = {
        "bench": "dbview_dicom",
        "poll_rows_per_s": round(poll),
        "upsert_rows_per_s": round(upsert),
        "store_dcmtk_per_s": round(dcmtk),
        "store_dcmtk_nodelay_per_s": round(dcmtk_nodelay),
        "store_scu_per_s": round(ours),
        "rows": a.rows,
        "instances": a.instances,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())

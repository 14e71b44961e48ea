"""dbview and DICOM throughput (issue 5), on real files and real associations over loopback.

    .venv/bin/python bench/dbview_dicom.py [--rows 5000] [--instances 200]

- poll: rows/s a ViewPoller delivers from a SQLite view to a no-op Sink, the cursor saved (one
  synchronous commit) after every acknowledged row, as in production;
- upsert: rows/s the ViewStore writes into xinjiang_mr's v_web_jcjg (validated against the spec);
- store_dcmtk / store_scu: C-STORE instances/s into our SCP (spool write + fsync + Sink round trip
  per instance), sent by dcmtk's storescu in one association, and by our SCU.

Prints readable lines, then one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def bench_dicom(d: Path, n: int) -> tuple[float, float]:
    files = synthetic_study(d / "out", count=n, size=64)
    scp = DicomScp("bench/C-STORE", d / "spool", sink_timeout_s=30)
    await scp.start(sink)
    try:
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/storescu", "-aec", "SPECBRIDGE", "127.0.0.1", str(scp.port), *map(str, files), stdout=asyncio.subprocess.DEVNULL
        )
        assert await proc.wait() == 0
        dcmtk = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        statuses = await DicomScu("127.0.0.1", scp.port, called_ae="SPECBRIDGE").store(files)
        ours = n / (time.perf_counter() - t0)
        assert statuses == [0] * n and sum(1 for o in scp.outcomes if o.status == 0) == 2 * n
    finally:
        await scp.stop()
    return dcmtk, ours


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
        dcmtk, ours = await bench_dicom(d, a.instances)
        print(f"C-STORE: dcmtk storescu {dcmtk:,.0f}/s, our SCU {ours:,.0f}/s ({a.instances} x 8 KiB-pixel CT)")
    out = {
        "bench": "dbview_dicom",
        "poll_rows_per_s": round(poll),
        "upsert_rows_per_s": round(upsert),
        "store_dcmtk_per_s": round(dcmtk),
        "store_scu_per_s": round(ours),
        "rows": a.rows,
        "instances": a.instances,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())

"""End-to-end bridge throughput on loopback, against a minimal forwarder (the ceiling), in one run.

Every run moves the same N exam reports from a SQLite view (the PACS view of the demo hospital)
to an HTTP endpoint in this process, with the same I/O shape:

- ceiling: a minimal aiohttp forwarder: read the view in keyset pages (as the poller does), POST
  each row's JSON to the sink, at most CONCURRENCY in flight; no journal, validation or translation.
- bridge (no crypto): `specbridge run`'s runtime: view poller -> journal (WAL, FULL) -> mapping
  chain to pe_system pacs_pubReport -> validation -> HTTP POST to the same sink, CONCURRENCY in
  flight -> journal SENT. The clock stops when the runtime has recorded every record SENT (durable).
- bridge2: the same with `delivery: {processes: 1}`: the target's sender (claim, validate, send,
  record) runs in a delivery process of its own (engine/runtime/procs.py), on the second core, while
  this process polls, translates, journals (and serves the sink). Its clock includes nothing of the
  child's start-up (specs loaded before the clock starts), and stops when this process has heard of
  every record SENT.
- bridge (xinjiang crypto): the same rows to xinjiang_mr ArchiveAutoReport.exam with its crypto
  profile (SM4-ECB payload and credential, SM2-wrapped key) over SOAP, to the xinjiang twin (which
  decrypts and validates every request in this same process).

The runs are interleaved for --reps repetitions (fresh journal each run) and the medians
compared, so machine noise hits both sides alike. Every run is on the same event loop: uvloop, as
`specbridge run` picks it by default (engine/runtime/loops.py), or --loop asyncio. Prints one line per
run, then one JSON line last.

    .venv/bin/python bench/bridge.py [--records 2000] [--reps 3] [--only ceiling,bridge,bridge2,crypto] [--loop asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import adapters.dbview  # noqa: E402  - imported by start_sources on first use: not inside the timed runs
import adapters.dicom  # noqa: E402
import adapters.http_json  # noqa: E402,F401
from adapters.server import start_app  # noqa: E402
from adapters.sqlite_db import SqliteDatabase  # noqa: E402
from engine import logs  # noqa: E402
from engine.bridge.model import Bridge, DeliveryConfig, JournalConfig, RetryConfig, Route, RouteTarget, Source, Target  # noqa: E402
from engine.runtime import loops, tuning  # noqa: E402
from engine.runtime.bridge import BridgeRuntime  # noqa: E402
from engine.runtime.serve import start_sources  # noqa: E402
from engine.spec import load_specs  # noqa: E402
from engine.translate import load_mappings  # noqa: E402
from engine.twin.serve import serve_twin  # noqa: E402

CONCURRENCY = 8
PAGE = 200  # the view poller's default page size
VIEW = "V_RIS_EXAM_REPORT"
CURSOR = ["UPDATE_TIME", "REPORT_ID"]


def rows(specset: Any, n: int) -> list[dict[str, Any]]:
    iface = specset.interface("hospital_pacs/exam_report")
    base = next(e.body for e in iface.spec.examples if e.valid)
    out = []
    for i in range(n):
        r = copy.deepcopy(base)
        r.update(REPORT_ID=f"R{i:07d}", ACCESSION_NO=f"A{i:07d}", PATIENT_SOURCE="体检",
                 UPDATE_TIME=f"2024-05-11 {8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}")
        out.append(r)
    return out


def write_view(db: Path, data: list[dict[str, Any]]) -> None:
    cols = list(data[0])
    con = sqlite3.connect(db)
    con.execute(f"CREATE TABLE exam ({', '.join(cols)})")
    con.executemany(f"INSERT INTO exam VALUES ({', '.join('?' for _ in cols)})", [[r[c] for c in cols] for r in data])
    con.execute(f"CREATE VIEW {VIEW} AS SELECT * FROM exam")
    con.commit()
    con.close()


class Sink:
    """The receiving platform for the no-crypto runs: counts requests, answers pe_system success."""

    def __init__(self) -> None:
        self.count = 0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.count += 1
        return web.Response(body=b'{"status":0,"message":"","data":null}', content_type="application/json")


async def ceiling(db_path: Path, sink_url: str, n: int) -> float:
    """Minimal forwarder: keyset pages out of the view, each row POSTed as JSON, CONCURRENCY in flight."""
    start = time.perf_counter()
    db = await SqliteDatabase.open(db_path, readonly=True)
    connector = aiohttp.TCPConnector(limit_per_host=32)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            sem = asyncio.Semaphore(CONCURRENCY)
            tasks: set[asyncio.Task[None]] = set()

            async def post(r: dict[str, Any]) -> None:
                try:
                    async with http.post(sink_url, data=msgspec.json.encode(r), headers={"Content-Type": "application/json"}) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise SystemExit(f"ceiling: sink answered {resp.status}")
                finally:
                    sem.release()

            after: list[Any] | None = None
            while True:
                page = await db.fetch_after(VIEW, None, CURSOR, after, PAGE)
                for r in page:
                    await sem.acquire()
                    t = asyncio.create_task(post(r))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                if len(page) < PAGE:
                    break
                after = [page[-1][c] for c in CURSOR]
            if tasks:
                await asyncio.gather(*tasks)
    finally:
        await db.close()
    return n / (time.perf_counter() - start)


async def bridge_run(specset: Any, mappings: Any, work: Path, db: Path, target: Target, interface: str, n: int,
                     secrets: dict[str, str], processes: int = 0) -> float:
    work.mkdir(parents=True, exist_ok=True)
    bridge = Bridge(
        id="bench", journal=JournalConfig(path=str(work / "journal.db")), secrets=dict(secrets),
        sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report",
                                settings={"database": str(db), "state": str(work / "cursor.db"),
                                          "interval_s": 0.05, "window": 16})},
        targets={"t": target}, routes=[Route(id="r", source="pacs", to=[RouteTarget(target="t", interface=interface)])],
        delivery=DeliveryConfig(processes=processes),
    )
    rt = BridgeRuntime(bridge, specset, mappings, base_dir=work, specs_dir=ROOT / "specs")
    await rt.start()
    start = time.perf_counter()
    sources = await start_sources(rt, work)
    assert rt.journal is not None
    try:
        while sum(rt.stats.sent.values()) + sum(rt.stats.dead.values()) < n:  # counted after the journal committed them
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        st = await rt.journal.stats()
        sent = sum(v.get("SENT", 0) for v in st.values())
        if sent != n:
            raise SystemExit(f"{interface} run: {sent} of {n} records SENT in the journal ({st})")
        return n / elapsed
    finally:
        for s in sources.values():
            await s.stop()
        await rt.stop()


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="ceiling,bridge,bridge2,crypto", help="comma-separated subset of the runs (for profiling)")
    ap.add_argument("--loop", default="auto", choices=loops.LOOPS,
                    help="every run's event loop, the ceiling's too (as `specbridge run --loop`)")
    ap.add_argument("--log-level", help="install specbridge's log handler at this level (`specbridge run` logs INFO), writing to a"
                                        " file in the work directory; default: no handler, as the earlier figures")
    return ap.parse_args()


async def main(args: argparse.Namespace) -> None:
    n, kinds = args.records, [k.strip() for k in args.only.split(",") if k.strip()]
    specset = load_specs(ROOT / "specs")
    mappings = load_mappings(ROOT / "specs" / "mappings", specset)
    got: dict[str, list[float]] = {k: [] for k in kinds}
    tuning.apply()  # as `specbridge run` does once the specs are loaded
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "hospital.db"
        write_view(db, rows(specset, n))
        if args.log_level:
            logs.configure("text", args.log_level, stream=(work / "bench.log").open("w", encoding="utf-8"))
        sink = Sink()
        app = web.Application()
        app.router.add_post("/{tail:.*}", sink.handle)
        runner, port = await start_app(app)
        creds = {"org_code": "457759922", "org_name": "示例", "user": "u", "password": "p"}
        xj = await serve_twin(specset, "xinjiang_mr", credentials=creds)
        try:
            secrets: dict[str, str] = {}
            kd = work / "keys"
            kd.mkdir()
            for name, value in xj.twin.client_secrets_text().items():
                (kd / name).write_text(value, encoding="utf-8")
                secrets[name] = f"file:{kd / name}"
            for k, v in {"XJ_ORG": "457759922", "XJ_NAME": "示例", "XJ_USER": "u", "XJ_PASS": "p"}.items():
                os.environ[f"SPECBRIDGE_BENCH_{k}"] = v
            retry = RetryConfig(base_s=0.05, max_delay_s=1)
            plain = Target(platform="pe_system", base_url=f"http://127.0.0.1:{port}", concurrency=CONCURRENCY, retry=retry)
            crypto_target = Target(
                platform="xinjiang_mr", base_url=xj.url, concurrency=CONCURRENCY, retry=retry,
                credentials={"org_code": "env:SPECBRIDGE_BENCH_XJ_ORG", "org_name": "env:SPECBRIDGE_BENCH_XJ_NAME",
                             "user": "env:SPECBRIDGE_BENCH_XJ_USER", "password": "env:SPECBRIDGE_BENCH_XJ_PASS"},
                supply={"strCredential": '<root><org code="{org_code}">{org_name}</org>'
                                         '<visitor type="0" code="{user}" key="{password}"></visitor></root>'})
            for rep in range(args.reps):
                for kind in kinds:
                    before = sink.count
                    if kind == "ceiling":
                        rate = await ceiling(db, f"http://127.0.0.1:{port}/forward", n)
                    elif kind == "bridge":
                        rate = await bridge_run(specset, mappings, work / f"plain{rep}", db, plain, "pacs_pubReport", n, secrets)
                    elif kind == "bridge2":
                        rate = await bridge_run(specset, mappings, work / f"plain2p{rep}", db, plain, "pacs_pubReport", n, secrets, 1)
                    else:
                        rate = await bridge_run(specset, mappings, work / f"xj{rep}", db, crypto_target, "ArchiveAutoReport.exam", n,
                                                secrets)
                    if kind != "crypto" and sink.count - before != n:
                        raise SystemExit(f"{kind} run: the sink got {sink.count - before} requests for {n} records")
                    got[kind].append(rate)
                    print(f"rep {rep + 1}/{args.reps} {kind:8s} {rate:8.0f} records/s", flush=True)
        finally:
            await xj.stop()
            await runner.cleanup()
    med = {k: statistics.median(v) for k, v in got.items()}
    out: dict[str, Any] = {"bench": "bridge", "records": n, "reps": args.reps, "concurrency": CONCURRENCY, "loop": loops.current()}
    if "ceiling" in med:
        out["ceiling_records_per_s"] = round(med["ceiling"])
    if "bridge" in med:
        out["bridge_records_per_s"] = round(med["bridge"])
        if "ceiling" in med:
            out["ratio_to_ceiling"] = round(med["bridge"] / med["ceiling"], 3)
        out["target_ratio"] = 0.5
    if "bridge2" in med:
        out["bridge_delivery_process_records_per_s"] = round(med["bridge2"])
        if "ceiling" in med:
            out["ratio_to_ceiling_delivery_process"] = round(med["bridge2"] / med["ceiling"], 3)
    if "crypto" in med:
        out["bridge_xinjiang_crypto_records_per_s"] = round(med["crypto"])
        out["crypto_ratio_to_target"] = round(med["crypto"] / 300, 3)
        out["target_crypto_records_per_s"] = 300
    out["runs"] = {k: [round(x) for x in v] for k, v in got.items()}
    if args.log_level:
        out["log_level"] = args.log_level
    out["note"] = ("medians of interleaved runs; the sink (and the xinjiang twin, decrypting every request) share the process"
                   " and the 2 cores")
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    ARGS = parse()
    loops.run(main(ARGS), ARGS.loop)

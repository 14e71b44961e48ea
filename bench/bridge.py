"""End-to-end bridge throughput on loopback, against a minimal forwarder (the ceiling), in one run.

Every run moves the same N exam reports from a SQLite view (the PACS view of the demo hospital)
to an HTTP endpoint:

- ceiling: a minimal aiohttp forwarder: read rows, POST each row's JSON to the sink; no journal,
  no validation, no translation.
- bridge (no crypto): `specbridge run`'s runtime: view poller -> journal (WAL, FULL) -> mapping
  chain to pe_system pacs_pubReport -> validation -> HTTP POST to the same sink -> journal SENT.
- bridge (xinjiang crypto): the same rows to xinjiang_mr ArchiveAutoReport.exam with its crypto
  profile (SM4-ECB payload and credential, SM2-wrapped key) over SOAP, to the xinjiang twin.

Prints one JSON line last. `.venv/bin/python bench/bridge.py [--records 2000]`
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sqlite3
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

from adapters.server import start_app  # noqa: E402
from engine.bridge.model import Bridge, JournalConfig, RetryConfig, Route, RouteTarget, Source, Target  # noqa: E402
from engine.runtime.bridge import BridgeRuntime  # noqa: E402
from engine.runtime.serve import start_sources  # noqa: E402
from engine.spec import load_specs  # noqa: E402
from engine.translate import load_mappings  # noqa: E402
from engine.twin.serve import serve_twin  # noqa: E402

CONCURRENCY = 8


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
    con.execute("CREATE VIEW V_RIS_EXAM_REPORT AS SELECT * FROM exam")
    con.commit()
    con.close()


class Sink:
    """The receiving platform for the no-crypto runs: counts records, answers pe_system success."""

    def __init__(self) -> None:
        self.count = 0
        self.done = asyncio.Event()
        self.target = 0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.count += 1
        if self.count >= self.target:
            self.done.set()
        return web.Response(body=b'{"status":0,"message":"","data":null}', content_type="application/json")

    def reset(self, target: int) -> None:
        self.count, self.target = 0, target
        self.done = asyncio.Event()


async def ceiling(db: Path, sink_url: str, n: int) -> float:
    """Minimal forwarder: rows out of the view, each POSTed as JSON; no journal, no checks."""
    import aiosqlite

    start = time.perf_counter()
    async with aiosqlite.connect(db) as con, aiohttp.ClientSession() as http:
        con.row_factory = aiosqlite.Row
        async with con.execute("SELECT * FROM V_RIS_EXAM_REPORT ORDER BY UPDATE_TIME, REPORT_ID") as cur:
            records = [dict(r) async for r in cur]
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(r: dict[str, Any]) -> None:
            async with sem, http.post(sink_url, data=msgspec.json.encode(r), headers={"Content-Type": "application/json"}) as resp:
                await resp.read()

        await asyncio.gather(*(one(r) for r in records))
    return n / (time.perf_counter() - start)


async def bridge_run(specset: Any, mappings: Any, work: Path, db: Path, target: Target, interface: str, n: int) -> float:
    bridge = Bridge(
        id="bench", journal=JournalConfig(path=str(work / f"journal-{interface}.db")), secrets=target_secrets(work),
        sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report",
                                settings={"database": str(db), "state": str(work / f"cursor-{interface}.db"),
                                          "interval_s": 0.05, "window": 64})},
        targets={"t": target}, routes=[Route(id="r", source="pacs", to=[RouteTarget(target="t", interface=interface)])],
    )
    rt = BridgeRuntime(bridge, specset, mappings, base_dir=work)
    await rt.start()
    start = time.perf_counter()
    sources = await start_sources(rt, work)
    assert rt.journal is not None
    try:
        while True:
            st = await rt.journal.stats()
            done = sum(v.get("SENT", 0) + v.get("DEAD", 0) for v in st.values())
            if done >= n:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        dead = sum(v.get("DEAD", 0) for v in st.values())
        if dead:
            raise SystemExit(f"{dead} records went DEAD in the {interface} run")
        return n / elapsed
    finally:
        for s in sources.values():
            await s.stop()
        await rt.stop()


_SECRETS: dict[str, str] = {}


def target_secrets(work: Path) -> dict[str, str]:
    return dict(_SECRETS)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()
    n = args.records
    specset = load_specs(ROOT / "specs")
    mappings = load_mappings(ROOT / "specs" / "mappings", specset)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "hospital.db"
        write_view(db, rows(specset, n))
        sink = Sink()
        app = web.Application()
        app.router.add_post("/{tail:.*}", sink.handle)
        runner, port = await start_app(app)
        try:
            sink.reset(n)
            ceil = await ceiling(db, f"http://127.0.0.1:{port}/forward", n)
            sink.reset(n)
            plain = Target(platform="pe_system", base_url=f"http://127.0.0.1:{port}", concurrency=CONCURRENCY,
                           retry=RetryConfig(base_s=0.05, max_delay_s=1))
            ours = await bridge_run(specset, mappings, work, db, plain, "pacs_pubReport", n)
            creds = {"org_code": "457759922", "org_name": "示例", "user": "u", "password": "p"}
            xj = await serve_twin(specset, "xinjiang_mr", credentials=creds)
            try:
                kd = work / "keys"
                kd.mkdir()
                for name, value in xj.twin.client_secrets_text().items():
                    (kd / name).write_text(value, encoding="utf-8")
                    _SECRETS[name] = f"file:{kd / name}"
                for k, v in {"XJ_ORG": "457759922", "XJ_NAME": "示例", "XJ_USER": "u", "XJ_PASS": "p"}.items():
                    os.environ[f"SPECBRIDGE_BENCH_{k}"] = v
                crypto_target = Target(
                    platform="xinjiang_mr", base_url=xj.url, concurrency=CONCURRENCY, retry=RetryConfig(base_s=0.05, max_delay_s=1),
                    credentials={"org_code": "env:SPECBRIDGE_BENCH_XJ_ORG", "org_name": "env:SPECBRIDGE_BENCH_XJ_NAME",
                                 "user": "env:SPECBRIDGE_BENCH_XJ_USER", "password": "env:SPECBRIDGE_BENCH_XJ_PASS"},
                    supply={"strCredential": '<root><org code="{org_code}">{org_name}</org>'
                                             '<visitor type="0" code="{user}" key="{password}"></visitor></root>'})
                crypto = await bridge_run(specset, mappings, work, db, crypto_target, "ArchiveAutoReport.exam", n)
            finally:
                await xj.stop()
        finally:
            await runner.cleanup()
    print(json.dumps({
        "bench": "bridge", "records": n, "concurrency": CONCURRENCY,
        "ceiling_records_per_s": round(ceil), "bridge_records_per_s": round(ours),
        "ratio_to_ceiling": round(ours / ceil, 3), "target_ratio": 0.5,
        "bridge_xinjiang_crypto_records_per_s": round(crypto), "target_crypto_records_per_s": 300,
        "note": "crypto run includes the xinjiang twin decrypting every request on the same 2 cores",
    }))


if __name__ == "__main__":
    asyncio.run(main())

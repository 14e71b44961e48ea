"""Inbound HTTP throughput: our http_json route (validation on) against a bare aiohttp handler.

Both servers run in this process on loopback; the load comes from a separate process (an
aiohttp client with N concurrent connections for a fixed duration), so the client's cost is not
charged to the server. The message is a full savePatientExam request (every field filled, built
from the spec's node tree) with its X-Token header. The ceiling is a bare handler that reads the
body and answers the same bytes our sink answers. Rounds alternate; best of each is kept.

On a small machine the Python load generator, not the server, sets the wall-clock rate, so the
server's own CPU time is measured too (this process runs nothing but the server during a run):
`ratio` compares requests per server-CPU-second, `wall_ratio` the plain requests per second.
Prints one JSON line last.

    .venv/bin/python bench/transports.py [--seconds 3] [--rounds 3] [--conns 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from adapters.base import InboundMessage, Reply  # noqa: E402
from adapters.http_json import HttpInbound  # noqa: E402
from adapters.server import start_app  # noqa: E402
from engine.spec import load_specs  # noqa: E402
from engine.spec.sample import sample  # noqa: E402

PATH = "/interface/savePatientExam"
REPLY = '{"code":200,"msg":"上传成功！"}'.encode()
TOKEN = "34383213ADc@32IOa13ADc@3"


# -- the load generator (runs in its own process) -------------------------------------------------
async def load(url: str, body: bytes, seconds: float, conns: int) -> dict[str, Any]:
    headers = {"Content-Type": "application/json;charset=utf-8", "X-Token": TOKEN}
    ok = bad = 0
    stop = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok, bad
        while time.perf_counter() < stop:
            async with session.post(url, data=body, headers=headers) as r:
                got = await r.read()
                if r.status == 200 and got == REPLY:
                    ok += 1
                else:
                    bad += 1

    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector) as s:
        start = time.perf_counter()
        await asyncio.gather(*(worker(s) for _ in range(conns)))
        elapsed = time.perf_counter() - start
    return {"ok": ok, "bad": bad, "rps": ok / elapsed}


def loadgen_main(args: argparse.Namespace) -> None:
    body = Path(args.body).read_bytes()
    print(json.dumps(asyncio.run(load(args.url, body, args.seconds, args.conns))))


# -- the servers --------------------------------------------------------------------------------
async def _bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=REPLY, headers={"Content-Type": "application/json; charset=utf-8"})


async def _sink(msg: InboundMessage) -> Reply:
    return Reply(REPLY)


async def run_load(url: str, body_file: str, seconds: float, conns: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--loadgen", "--url", url, "--body", body_file, "--seconds", str(seconds), "--conns", str(conns),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    specs = load_specs(ROOT / "specs", strict=False)
    iface = specs.interface("jilin_imaging/savePatientExam")
    assert iface.request is not None
    raw = msgspec.json.encode(sample(iface.request.node, full=True))
    res = iface.validate_request(raw, {"X-Token": TOKEN})
    assert res.valid, res.errors
    ours = HttpInbound(specs.platforms["jilin_imaging"], validate=True)
    await ours.start(_sink)
    bare_app = web.Application()
    bare_app.router.add_post(PATH, _bare)
    bare_runner, bare_port = await start_app(bare_app)
    best = {"ours": 0.0, "ceiling": 0.0}
    per_cpu = {"ours": 0.0, "ceiling": 0.0}
    bad = 0
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        fh.write(raw)
        fh.flush()
        try:
            for _ in range(args.rounds):
                for name, port in (("ceiling", bare_port), ("ours", ours.port)):
                    url = f"http://127.0.0.1:{port}{PATH}"
                    cpu0 = time.process_time()
                    per_proc = args.conns // args.procs
                    runs = await asyncio.gather(*(run_load(url, fh.name, args.seconds, per_proc) for _ in range(args.procs)))
                    cpu = time.process_time() - cpu0
                    best[name] = max(best[name], sum(r["rps"] for r in runs))
                    per_cpu[name] = max(per_cpu[name], sum(r["ok"] for r in runs) / cpu)
                    bad += sum(r["bad"] for r in runs)
        finally:
            await ours.stop()
            await bare_runner.cleanup()
    return {
        "bench": "transports",
        "route": "jilin_imaging/savePatientExam (http_json inbound, validation on, full body)",
        "body_bytes": len(raw),
        "conns": args.conns,
        "loadgen_procs": args.procs,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "ours_rps": round(best["ours"]),
        "ceiling_rps": round(best["ceiling"]),
        "ours_per_server_cpu_s": round(per_cpu["ours"]),
        "ceiling_per_server_cpu_s": round(per_cpu["ceiling"]),
        "ratio": round(per_cpu["ours"] / per_cpu["ceiling"], 3),
        "wall_ratio": round(best["ours"] / best["ceiling"], 3),
        "target_ratio": 0.6,
        "bad_responses": bad,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--procs", type=int, default=2, help="load generator processes")
    ap.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--body", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return
    print(json.dumps(asyncio.run(bench(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()

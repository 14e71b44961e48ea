"""Journal benchmark (issue 7): insert and search rates at 10k and at --rows (default 1M) messages.

    .venv/bin/python bench/journal.py [--rows 1000000] [--small 10000] [--dir DIR] [--keep]

Each size gets its own file, pre-filled in one transaction by executemany (fast to build, same
schema and distribution: 90% SENT, 5% ERROR, 3% DEAD, 2% RECEIVED over 12 interfaces and 4 targets).
On each file it measures:

- insert: `Journal.receive` of fresh keyed records, 64 concurrent producers (group commit);
  at the small size also one producer at a time, and synchronous FULL against NORMAL;
- search: a mix of searches (latest, by state, interface, both, key, time window, deep keyset
  page) through the API, and the same SQL run directly on a sqlite3 connection (no thread hop:
  the stricter index check). The target: search at the large size no slower than 3x the small one.

Prints readable lines, then one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.journal import Journal, State
from engine.journal import ops as journal_ops
from engine.journal.model import encode_payload, payload_hash

T0 = 1_700_000_000.0
STEP_S = 0.1
INTERFACES = [f"platform{p}/Interface{i}" for p in range(4) for i in range(3)]
TARGETS = [f"target{t}" for t in range(4)]
SOURCE = {"reportNo": "", "idCardNo": "110105199003071234", "name": "张三", "items": [{"code": "GLU", "value": "5.6"}] * 4}


def state_of(i: int) -> str:
    r = i % 100
    return "ERROR" if r < 5 else "DEAD" if r < 8 else "RECEIVED" if r < 10 else "SENT"


def build(path: str, rows: int) -> float:
    """Fill a fresh journal with `rows` messages in one transaction. Returns seconds taken."""
    asyncio.run(_create(path))
    started = time.perf_counter()
    src = encode_payload({**SOURCE, "reportNo": "R"}) or b""
    translated = src + b"<translated/>" * 8
    digest = payload_hash(src)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA synchronous=OFF")
    c.execute("PRAGMA cache_size=-1000000")

    def gen() -> Any:
        for i in range(1, rows + 1):
            st = state_of(i)
            t = T0 + i * STEP_S
            nxt = t + 600 if st == "ERROR" else t if st == "RECEIVED" else None
            err = "HTTP 503" if st == "ERROR" else "400 入参不规范" if st == "DEAD" else None
            yield (i, INTERFACES[i % len(INTERFACES)], TARGETS[i % len(TARGETS)], st, f"K{i}", digest,
                   t, t, t, nxt, 1 if st != "RECEIVED" else 0, err)  # fmt: skip

    c.execute("BEGIN")
    c.executemany(
        "INSERT INTO messages (id, interface, target, state, idem_key, payload_hash, created_at,"
        " updated_at, cycle_at, next_attempt_at, attempts, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        gen(),
    )
    c.executemany("INSERT INTO payloads (id, source, translated) VALUES (?, ?, ?)", ((i, src, translated) for i in range(1, rows + 1)))
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return time.perf_counter() - started


async def _create(path: str) -> None:
    await (await Journal.open(path)).close()


async def insert_rate(path: str, n: int, *, concurrency: int, synchronous: str, tag: str) -> float:
    """receive() rate for n fresh keyed records (durable on return)."""
    j = await Journal.open(path, synchronous=synchronous)
    counter = iter(range(n))

    async def producer() -> None:
        for i in counter:
            await j.receive(INTERFACES[i % 12], TARGETS[i % 4], {**SOURCE, "reportNo": f"{tag}{i}"}, key=f"{tag}{i}")

    started = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await j.close()
    return n / elapsed


def queries(rows: int, rng: random.Random) -> list[dict[str, Any]]:
    """One round of the search mix, parameters drawn across the whole file."""
    mid_t = T0 + rng.randint(1, rows) * STEP_S
    return [
        {},
        {"state": State.DEAD},
        {"state": State.ERROR, "interface": INTERFACES[rng.randrange(12)]},
        {"interface": INTERFACES[rng.randrange(12)]},
        {"key": f"K{rng.randint(1, rows)}"},
        {"since": mid_t, "until": mid_t + 3600},
        {"state": State.SENT, "interface": INTERFACES[rng.randrange(12)], "after_id": rng.randint(1, rows)},
        {"state": State.RECEIVED, "since": mid_t},
    ]


def search_direct(path: str, rows: int, rounds: int) -> float:
    """Searches/s running the journal's search SQL on a plain connection (no thread hop)."""
    rng = random.Random(7)
    c = sqlite3.connect(path)
    n, started = 0, time.perf_counter()
    for _ in range(rounds):
        for q in queries(rows, rng):
            args: dict[str, Any] = {"state": None, "interface": None, "target": None, "key": None, "since": None, "until": None,
                                    "after_id": None, "limit": 50, "newest_first": True, **q}  # fmt: skip
            journal_ops.search(c, **args)
            n += 1
    elapsed = time.perf_counter() - started
    c.close()
    return n / elapsed


async def search_api(path: str, rows: int, rounds: int) -> tuple[float, float]:
    """(searches/s through Journal.search, seconds for one stats())."""
    rng = random.Random(7)
    j = await Journal.open(path)
    n, started = 0, time.perf_counter()
    for _ in range(rounds):
        for q in queries(rows, rng):
            await j.search(limit=50, **q)
            n += 1
    rate = n / (time.perf_counter() - started)
    t = time.perf_counter()
    await j.stats()
    stats_s = time.perf_counter() - t
    await j.close()
    return rate, stats_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="large size (default 1M)")
    ap.add_argument("--small", type=int, default=10_000, help="small size (default 10k)")
    ap.add_argument("--inserts", type=int, default=5_000, help="receive() calls timed per measurement")
    ap.add_argument("--rounds", type=int, default=300, help="rounds of the search mix")
    ap.add_argument("--dir", help="where to put the files (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    a = ap.parse_args()
    base = Path(a.dir or tempfile.mkdtemp(prefix="journal-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"bench": "journal", "rows": {"small": a.small, "large": a.rows}}
    try:
        results: dict[str, dict[str, float]] = {}
        for label, rows in (("small", a.small), ("large", a.rows)):
            path = str(base / f"journal-{rows}.db")
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
            built = build(path, rows)
            print(f"{label}: built {rows} rows in {built:.1f} s ({os.path.getsize(path) / 1e6:.0f} MB)", flush=True)
            r: dict[str, float] = {"build_s": round(built, 2)}
            r["search_api_per_s"], stats_s = asyncio.run(search_api(path, rows, a.rounds))
            r["search_sql_per_s"] = search_direct(path, rows, a.rounds)
            r["stats_ms"] = stats_s * 1000
            r["insert_per_s"] = asyncio.run(insert_rate(path, a.inserts, concurrency=64, synchronous="FULL", tag="c64F"))
            if label == "small":
                r["insert_1_full_per_s"] = asyncio.run(insert_rate(path, a.inserts // 5, concurrency=1, synchronous="FULL", tag="c1F"))
                r["insert_1_normal_per_s"] = asyncio.run(insert_rate(path, a.inserts // 5, concurrency=1, synchronous="NORMAL", tag="c1N"))
                r["insert_64_normal_per_s"] = asyncio.run(insert_rate(path, a.inserts, concurrency=64, synchronous="NORMAL", tag="c64N"))
            results[label] = {k: round(v, 1) for k, v in r.items()}
            print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in results[label].items()), flush=True)
        s, big = results["small"], results["large"]
        out.update(results)
        out["search_slowdown_api"] = round(s["search_api_per_s"] / big["search_api_per_s"], 2)
        out["search_slowdown_sql"] = round(s["search_sql_per_s"] / big["search_sql_per_s"], 2)
        out["search_ok"] = out["search_slowdown_api"] <= 3 and out["search_slowdown_sql"] <= 3
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Validation throughput: compiled validator vs plain msgspec decode into a Struct (the floor).

The message is a full savePatientExam request (every one of its fields filled). The floor is
`msgspec.json.decode` of the same bytes into an equivalent Struct with the same fields and
plain types and no constraints: what a hand-coded integration would do with no validation.
Both run in this process on the same bytes object, called the same way (a bound method in the
same loop, no lambda around either). Each round interleaves batches of the two (floor, validator,
validator, floor, ...) so load from elsewhere on the machine falls on both alike, and takes each
one's median batch time; the ratio is the median of the per-round ratios, the rates the medians over
rounds. The validator's answer is checked to come from its fast path, as in production for a valid
message. Prints one JSON line last.

    .venv/bin/python bench/validate.py [--seconds 0.5] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.spec import load_specs
from engine.spec.nodes import Node
from engine.spec.sample import sample

ROOT = Path(__file__).resolve().parents[1]
BATCH = 200


def plain_struct(node: Node) -> Any:
    """The hand-coded equivalent: same names, plain types, nothing checked."""
    fields: list[tuple[str, Any, Any]] = []
    for i, (name, child) in enumerate((node.children or {}).items()):
        tp: Any = {"int": int, "number": float, "decimal": float, "bool": bool}.get(child.kind, str)
        if child.children is not None:
            tp = plain_struct(child)
            tp = list[tp] if child.is_list else tp
        fields.append((f"f{i}", tp | None, msgspec.field(name=name, default=None)))
    return msgspec.defstruct("Plain", fields, kw_only=True)


def batch_time(fn: Callable[[bytes], Any], raw: bytes) -> float:
    """Seconds per call of fn(raw) over one batch (the clock is read twice per batch)."""
    batch = range(BATCH)
    start = time.perf_counter()
    for _ in batch:
        fn(raw)
    return (time.perf_counter() - start) / BATCH


def round_times(a: Callable[[bytes], Any], b: Callable[[bytes], Any], raw: bytes, seconds: float) -> tuple[float, float]:
    """Median seconds per call of a and of b over batches interleaved a,b,b,a,... for about
    `seconds`, so load from elsewhere on the machine falls on both alike."""
    ta: list[float] = []
    tb: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        ta.append(batch_time(a, raw))
        tb.append(batch_time(b, raw))
        tb.append(batch_time(b, raw))
        ta.append(batch_time(a, raw))
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=0.5, help="per round (both contenders, interleaved)")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    iface = load_specs(ROOT / "specs", strict=False).interface("jilin_imaging/savePatientExam")
    assert iface.request is not None
    msg = sample(iface.request.node, full=True)
    raw = msgspec.json.encode(msg)
    res = iface.validate_request(raw)
    assert res.valid, res.errors
    assert iface.request.has_fast_path
    body = iface.request
    fast_ok = body._check is None or body._check(body._decoder.decode(raw))
    assert fast_ok, "the fast path must accept the message, or this measures the walker"
    floor = msgspec.json.Decoder(plain_struct(body.node)).decode
    ours = iface.validate_request
    floor(raw)

    def walker_only(raw: bytes) -> Any:
        return body._walk(msgspec.json.decode(raw), False)  # the complete walker alone (decoded data takes the fast path too)

    for _ in range(3):  # warm-up: caches, branch predictors, lazily built decoder state
        batch_time(floor, raw)
        batch_time(ours, raw)
    floors: list[float] = []
    validators: list[float] = []
    ratios: list[float] = []
    for _ in range(args.rounds):
        f, v = round_times(floor, ours, raw, args.seconds)
        floors.append(1 / f)
        validators.append(1 / v)
        ratios.append(f / v)
    walker = 1 / statistics.median(batch_time(walker_only, raw) for _ in range(20))
    floor_med, ours_med = statistics.median(floors), statistics.median(validators)
    out = {
        "bench": "validate",
        "message": "jilin_imaging/savePatientExam (full)",
        "bytes": len(raw),
        "fields": len(msg),
        "rounds": args.rounds,
        "floor_msgs_per_s": round(floor_med),
        "validator_msgs_per_s": round(ours_med),
        "walker_only_msgs_per_s": round(walker),
        "floor_us": round(1e6 / floor_med, 3),
        "validator_us": round(1e6 / ours_med, 3),
        "ratio_to_floor": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "target_ratio": 0.5,
    }
    out["meets_target"] = out["ratio_to_floor"] >= out["target_ratio"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()

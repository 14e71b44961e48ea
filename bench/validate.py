"""Validation throughput: compiled validator vs plain msgspec decode into a Struct (the floor).

The message is a full savePatientExam request (every one of its fields filled). The floor is
`msgspec.json.decode` of the same bytes into an equivalent Struct with the same fields and
plain types and no constraints: what a hand-coded integration would do with no validation.
Both run in this process, alternating, best of several rounds. Prints one JSON line last.

    .venv/bin/python bench/validate.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.spec import load_specs
from engine.spec.nodes import Node
from engine.spec.sample import sample

ROOT = Path(__file__).resolve().parents[1]


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


def rate(fn: Callable[[], Any], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            fn()
        n += 200
        el = time.perf_counter() - start
        if el >= seconds:
            return n / el


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    iface = load_specs(ROOT / "specs", strict=False).interface("jilin_imaging/savePatientExam")
    assert iface.request is not None
    msg = sample(iface.request.node, full=True)
    raw = msgspec.json.encode(msg)
    res = iface.validate_request(raw)
    assert res.valid, res.errors
    assert iface.request.has_fast_path
    floor_dec = msgspec.json.Decoder(plain_struct(iface.request.node))
    floor_dec.decode(raw)
    best_floor = best_ours = best_walker = 0.0
    walker_only = iface.request
    for _ in range(args.rounds):
        best_floor = max(best_floor, rate(lambda: floor_dec.decode(raw), args.seconds))
        best_ours = max(best_ours, rate(lambda: iface.validate_request(raw), args.seconds))
        best_walker = max(best_walker, rate(lambda: walker_only.validate(msgspec.json.decode(raw)), args.seconds / 2))
    out = {
        "bench": "validate",
        "message": "jilin_imaging/savePatientExam (full)",
        "bytes": len(raw),
        "fields": len(msg),
        "floor_msgs_per_s": round(best_floor),
        "validator_msgs_per_s": round(best_ours),
        "walker_only_msgs_per_s": round(best_walker),
        "ratio_to_floor": round(best_ours / best_floor, 3),
        "target_ratio": 0.5,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

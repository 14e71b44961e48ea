"""Translation cost per record: generated builders against the reference closures, in one process.

The record is the PACS view row bench/bridge.py sends (sources hospital_pacs/exam_report, a
physical-exam patient), translated along two chains:

- pe: hospital_pacs.exam_report -> exam_report.pe_system.pacs_pubReport (what bench/bridge.py runs)
- xinjiang: hospital_pacs.exam_report -> exam_report.xinjiang_mr (ArchiveAutoReport.exam; its
  last step also serialises strReportInfo to XML, which is not the mapping's work, so the chain's
  builds alone are reported too)

Both ways are loaded from the same specs: `load_mappings(generate=True)` (the default, one
generated function per fields block) and `generate=False` (the compiler's closures, the reference
semantics). Their outputs are compared before timing. Reps are interleaved and medians compared,
so machine noise hits both alike. Prints one line per measurement, then one JSON line last.

    .venv/bin/python bench/translate.py [--records 5000] [--reps 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.spec import load_specs  # noqa: E402
from engine.translate import Chain, MappingSet, load_mappings  # noqa: E402
from engine.translate.paths import Scope  # noqa: E402

SOURCE = "hospital_pacs/exam_report"
CHAINS = {"pe": "pe_system/pacs_pubReport", "xinjiang": "xinjiang_mr/ArchiveAutoReport.exam"}


def record(specset: Any) -> dict[str, Any]:
    base = next(e.body for e in specset.interface(SOURCE).spec.examples if e.valid)
    return dict(base, PATIENT_SOURCE="体检")


def per_record_us(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def builds(chain: Chain, rec: Any) -> Callable[[], Any]:
    """The chain without the last step's carried_as encoding: the mappings' own work."""
    steps = [t._build for t in chain.steps]

    def run() -> Any:
        r = rec
        for b in steps:
            r = b(Scope(r, r))
        return r

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    specset = load_specs(ROOT / "specs", strict=False)
    ways: dict[str, MappingSet] = {
        "generated": load_mappings(ROOT / "specs" / "mappings", specset),
        "reference": load_mappings(ROOT / "specs" / "mappings", specset, generate=False),
    }
    rec = record(specset)
    runs: dict[str, Callable[[], Any]] = {}
    for name, target in CHAINS.items():
        outs = {}
        for way, ms in ways.items():
            chain = ms.route(SOURCE, target)
            runs[f"{name} chain/{way}"] = lambda c=chain: c.translate(rec)
            if name == "xinjiang":
                runs[f"{name} builds/{way}"] = builds(chain, rec)
            outs[way] = chain.translate(rec)
        if outs["generated"] != outs["reference"]:
            print(f"{name}: the two ways translate the record differently", file=sys.stderr)
            return 1
    for fn in runs.values():  # warm up
        per_record_us(fn, 200)
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.reps):
        for key, fn in runs.items():
            samples[key].append(per_record_us(fn, args.records))
    result: dict[str, Any] = {"records": args.records, "reps": args.reps}
    for key, xs in samples.items():
        med = statistics.median(xs)
        print(f"{key:28s} median {med:7.1f} us/record   min {min(xs):7.1f}")
        result[key.replace(" ", "_").replace("/", "_") + "_us"] = round(med, 2)
    for key in sorted({k.split("/")[0] for k in runs}):
        speedup = statistics.median(samples[f"{key}/reference"]) / statistics.median(samples[f"{key}/generated"])
        print(f"{key:28s} speedup x{speedup:.2f}")
        result[key.replace(" ", "_") + "_speedup"] = round(speedup, 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

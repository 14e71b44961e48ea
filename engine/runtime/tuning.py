"""Interpreter settings for a long-running bridge process, applied once the specs are loaded.

- The garbage collector is kept off the loaded specs. Specs, mappings, code tables and compiled
  validators are a large graph of objects that lives as long as the process; CPython's oldest-generation
  collections walk all of it: tens of milliseconds during which the event loop answers nobody (measured:
  loop stalls of up to ~40 ms in bench/bridge.py, about 9% of its throughput). `gc.freeze()` moves them
  out of the collector's sight; garbage made afterwards is collected as before.
- The GIL changes hands every 1 ms instead of 5. The journal's thread (aiosqlite) gives the GIL up on
  every SQLite call and then waits for the event loop's thread to hand it back: up to the switch
  interval each time while the loop is busy, which a commit pays several times over. A shorter interval
  makes commits, and so acknowledgements and deliveries, come back sooner (bench/bridge.py: +4 to +9%).
- The youngest generation is collected every 20,000 allocations instead of 700. A message makes and
  drops hundreds of objects (requests, futures, dicts), nearly all freed by reference counting; at 700
  the collector ran every few messages to find almost nothing: ~4% of a delivery process's time
  (measured with gc.callbacks), bench/bridge.py +2 to +3%. Cycles are still collected, in bigger sweeps.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.001
GC_THRESHOLDS = (20_000, 20, 20)


def apply() -> None:
    """Collect what loading left behind, freeze everything alive, collect the young less often, shorten
    the GIL switch interval: once per process, after the specs are loaded (`specbridge run`, a delivery
    process)."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.set_threshold(*GC_THRESHOLDS)

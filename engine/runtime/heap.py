"""Keep the garbage collector off the loaded specs.

Specs, mappings, code tables and compiled validators are a large graph of objects that lives as long
as the process. CPython's oldest-generation collections walk all of it: tens of milliseconds during
which the event loop answers nobody (measured: loop stalls of up to ~40 ms in bench/bridge.py, about
9% of its throughput). `gc.freeze()` after loading moves them out of the collector's sight; garbage made
afterwards is collected as before.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what loading left behind, then freeze everything alive: call once, after the specs are loaded."""
    gc.collect()
    gc.freeze()

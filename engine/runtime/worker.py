"""A delivery process (`python -m engine.runtime.worker`): the senders of some targets, started and fed
by the bridge's process over stdin/stdout (the protocol is in engine/runtime/procs.py).

It loads the same specs and mappings, opens the same journal and runs the ordinary delivery loops
(engine/runtime/bridge.py) for its targets only; its metric events go back to the bridge's process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import IO, Any

import msgspec

from engine import logs
from engine.bridge.model import Bridge
from engine.errors import SpecbridgeError
from engine.journal import Message
from engine.runtime import loops, tuning
from engine.runtime.bridge import BridgeRuntime
from engine.spec import load_specs
from engine.translate import load_mappings


class Hand(msgspec.Struct):
    hand: list[Message]
    n: dict[str, int]


_HAND = msgspec.json.Decoder(Hand)

FLUSH_S = 0.005
"""Reports go back at most this long after an event: the bridge's counters trail the journal by no more."""


class Relay:
    """Stands in for RuntimeMetrics: every call (`sent(target, interface, route)`...) is recorded and sent
    to the bridge's process in batches, where it is replayed on the real metrics. Calls with the same
    arguments go as one, with their count: a report carries a few counts, not an event per message, so
    neither process encodes, decodes or replays thousands of them a second."""

    def __init__(self, out: IO[bytes], runtime: Any = None) -> None:
        self._out = out
        self._counts: dict[tuple[Any, ...], int] = {}
        self._durations: dict[str, list[float]] = {}
        self._scheduled = False
        self.runtime: BridgeRuntime | None = runtime
        self.seen: dict[str, int] = {}
        """How many handed messages per target this process has taken (as the bridge's process counts them)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            key = (name, *args)
            self._counts[key] = self._counts.get(key, 0) + 1
            self.soon()

        setattr(self, name, record)  # made once per metric, not on every call
        return record

    def attempted(self, target: str, duration_ms: float | None) -> None:
        """Durations go over one by one: the bridge's process puts each in its latency histogram."""
        if duration_ms is not None and duration_ms > 0:
            self._durations.setdefault(target, []).append(duration_ms)
            self.soon()

    def soon(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        report: dict[str, Any] = {"m": [[k[0], k[1:], n] for k, n in self._counts.items()], "ms": self._durations}
        self._counts, self._durations = {}, {}
        rt = self.runtime
        if rt is not None:
            report["inflight"] = len(rt.inflight())
            report["tokens"] = {name: [tm.refreshed, tm.fetches, tm.refreshes_today, bool(tm.alarm)]
                                for name, c in rt.targets.items() if rt.runs_here(name) and (tm := c.tokens) is not None}
            report["seen"] = self.seen
            report["unsent"] = rt.unsent()
            report["limits"] = rt.limits()
        if self._out.closed:
            return
        try:
            self._out.write(msgspec.json.encode(report) + b"\n")
            self._out.flush()
        except OSError:  # the bridge's process is gone (its pipe broke): nobody to report to; the journal has it all
            with contextlib.suppress(OSError):
                self._out.close()


async def _stdin() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def serve(out: IO[bytes]) -> int:
    inp = await _stdin()
    first = await inp.readline()
    if not first:
        return 0
    init = msgspec.json.decode(first)["init"]
    if (ls := init.get("log")) is not None:
        stream = open(ls["path"], "a", encoding="utf-8") if ls.get("path") else None  # noqa: SIM115 - open for the process's life
        logs.configure(ls["format"], ls["level"], stream=stream)
    relay = Relay(out)
    try:
        specs_dir = Path(init["specs_dir"])
        specset = load_specs(specs_dir)
        mappings = load_mappings(specs_dir / "mappings", specset)
        bridge = msgspec.convert(init["bridge"], Bridge)
        rt = BridgeRuntime(bridge, specset, mappings, base_dir=Path(init["base_dir"]), local_targets=init["targets"], metrics=relay)
        relay.runtime = rt
        tuning.apply()
        await rt.start()
    except (SpecbridgeError, OSError, KeyError, msgspec.ValidationError) as exc:
        out.write(msgspec.json.encode({"failed": f"{type(exc).__name__}: {exc}"}) + b"\n")
        out.flush()
        return 2
    out.write(msgspec.json.encode({"ready": True, "loop": loops.current()}) + b"\n")
    out.flush()
    drain_s = 10.0
    try:
        while line := await inp.readline():
            if line.startswith(b'{"hand"'):
                handed = _HAND.decode(line)
                await rt.take(handed.hand)
                relay.seen.update(handed.n)
                relay.soon()
                continue
            said = msgspec.json.decode(line)
            if "wake" in said:
                for t in said["wake"]:
                    rt.wake(t)
                relay.soon()  # its senders now take fewer hand-overs until they have claimed: say so
            elif "paused" in said:
                rt.paused = set(said["paused"])
                rt.wake()
            elif "stop" in said:
                drain_s = float(said["stop"])
                break
    finally:  # asked to stop, or the bridge's process is gone (end of input): finish the sends under way
        await rt.stop(drain_s)
        with contextlib.suppress(Exception):
            relay.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.runtime.worker", description="a delivery process (started by a bridge)")
    ap.add_argument("--loop", choices=loops.LOOPS, default="auto", help="event loop (the bridge's process passes its own)")
    args = ap.parse_args(argv)
    # The protocol owns the original stdout; anything else printing to it would corrupt the reports.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group: the bridge's process stops us, drained
    return loops.run(serve(out), args.loop)


if __name__ == "__main__":
    sys.exit(main())

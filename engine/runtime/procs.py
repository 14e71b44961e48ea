"""Delivery processes: targets' senders in processes of their own, so a bridge uses more than one core.

One Python process runs Python on one core at a time. With `delivery: {processes: N}` the bridge's
process keeps its sources, translation, journalling, synchronous queries and admin server, and N
child processes (`python -m engine.runtime.worker`) run the senders of the other targets: each claims
its targets' due messages from the same journal file (SQLite WAL: leases make two processes' claims
safe), validates, envelopes, sends and records them.

A target's sender lives in exactly one process, so its concurrency limit, token and daily token cap
stay exact. The bridge's process talks to each child over its stdin/stdout, one JSON object per line
(the journal carries the messages themselves):

- to the child: `{"init": {...}}` once, then `{"hand": [messages], "n": {target: handed so far}}`
  (new messages, journalled already claimed: the hand-off `receive` does in one process, see
  BridgeRuntime._journal_one), `{"wake": [targets]}` (messages to claim from the journal: a replay,
  a resume, records the child had no room for), `{"paused": [routes]}`, `{"stop": drain_s}`; end of
  input (the bridge's process died) stops it too;
- from the child: `{"ready": true, "loop": kind}` or `{"failed": reason}`, then `{"m": [[event, args, count], ...],
  "ms": {target: [attempt ms, ...]}, "inflight": n, "tokens": {...}, "seen": {...}, "unsent": {...}, "limits": {...}}`: its
  metric events (sent, retried, dead... counted by their arguments) and attempt durations, replayed on the
  bridge's metrics and counters, so /metrics and the dashboard show every process's work; and how far
  it has read the hand-offs, how many messages its senders hold unsent and how many they take, which
  bounds how many more it is handed (as a sender's room does in one process).

A child that exits unexpectedly is logged and started again (its claimed messages come back when
their leases run out); /ready reports it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from engine import logs
from engine.admin.metrics import RuntimeMetrics
from engine.bridge.model import Bridge
from engine.errors import SpecbridgeError
from engine.runtime import loops

if TYPE_CHECKING:
    from engine.runtime.bridge import BridgeRuntime

log = logging.getLogger("specbridge.runtime")

START_TIMEOUT_S = 120.0
"""Loading the specs and opening the journal: a few seconds; this much means the child is stuck."""

_ROOT = Path(__file__).resolve().parents[2]


def sync_targets(bridge: Bridge) -> set[str]:
    """Targets a synchronous route sends to: their sender stays in the bridge's process (the caller waits there)."""
    return {t.target for r in bridge.routes if r.reply == "sync" for t in r.to}


def plan(bridge: Bridge) -> dict[str, int]:
    """Which delivery process runs which target's sender (targets not listed run in the bridge's process):
    in order of name, round robin over at most as many processes as there are such targets."""
    n = bridge.delivery.processes
    movable = sorted(set(bridge.targets) - sync_targets(bridge))
    return {name: i % n for i, name in enumerate(movable)} if n else {}


class Child:
    """One delivery process, as the bridge's process sees it."""

    def __init__(self, index: int, targets: list[str]) -> None:
        self.index = index
        self.targets = targets
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.inflight = 0
        self.tokens: dict[str, list[Any]] = {}
        self.exits = 0
        self.reader: asyncio.Task[None] | None = None
        self.handed: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.unsent: dict[str, int] = {}
        self.limits: dict[str, int] = {}
        self.outbox: list[Any] = []

    @property
    def name(self) -> str:
        return f"delivery process {self.index + 1} ({', '.join(self.targets)})"

    def send(self, obj: Any) -> None:
        p = self.proc
        if p is None or p.stdin is None or p.stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            p.stdin.write(msgspec.json.encode(obj) + b"\n")


class DeliveryProcesses:
    """The bridge process's side: start, feed, supervise and stop the delivery processes."""

    def __init__(self, runtime: BridgeRuntime, specs_dir: Path) -> None:
        self.runtime = runtime
        self.specs_dir = specs_dir
        self.assigned: dict[str, int] = plan(runtime.bridge)
        self.children: list[Child] = []
        self._stopping = False
        self._woken: set[str] = set()
        self._reserved: dict[str, int] = {}
        self._flush_scheduled = False

    def remote(self, target: str) -> bool:
        return target in self.assigned

    # -- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        by_index: dict[int, list[str]] = {}
        for name, i in self.assigned.items():
            by_index.setdefault(i, []).append(name)
        self.children = [Child(i, names) for i, names in sorted(by_index.items())]
        try:
            await asyncio.gather(*(self._spawn(c) for c in self.children))
        except BaseException:
            await self.stop(0)
            raise

    async def _spawn(self, child: Child) -> None:
        rt = self.runtime
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        child.proc = proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine.runtime.worker", "--loop", loops.current(),  # the loop this process runs on
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env, cwd=str(rt.base_dir), limit=1 << 24)
        child.ready = False
        child.handed, child.seen, child.unsent, child.limits, child.outbox = {}, {}, {}, {}, []
        child.send({"init": {"bridge": msgspec.to_builtins(rt.bridge), "specs_dir": str(self.specs_dir), "base_dir": str(rt.base_dir),
                             "targets": child.targets, "paused": sorted(rt.paused), "log": logs.settings(), "index": child.index}})
        assert proc.stdout is not None
        try:
            first = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SpecbridgeError(f"{child.name} did not start within {START_TIMEOUT_S:g} s") from None
        try:
            said = msgspec.json.decode(first) if first.strip() else {"failed": f"exited with code {await proc.wait()}"}
        except msgspec.DecodeError:
            said = {"failed": f"said {first[:200]!r} instead of ready"}
        if not isinstance(said, dict) or not said.get("ready"):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            why = said.get("failed", said) if isinstance(said, dict) else said
            raise SpecbridgeError(f"{child.name} could not start: {why}")
        child.ready = True
        child.reader = asyncio.create_task(self._read(child), name=f"delivery-process-{child.index + 1}")
        log.info("%s started (pid %d, event loop %s)", child.name, proc.pid, said.get("loop", "?"))

    async def _read(self, child: Child) -> None:
        """Apply the child's reports until it exits; start it again if nobody asked it to stop."""
        proc = child.proc
        assert proc is not None and proc.stdout is not None
        while line := await proc.stdout.readline():
            try:
                self._apply(child, msgspec.json.decode(line))
            except (msgspec.DecodeError, TypeError, ValueError, KeyError) as exc:  # a stray line (a library printing): not ours
                log.warning("%s: unreadable report line ignored (%s)", child.name, exc)
        code = await proc.wait()
        child.ready = False
        child.inflight = 0
        if self._stopping:
            return
        log.error("%s exited with code %s; starting it again (its claimed messages come back when their leases run out)",
                  child.name, code)
        while not self._stopping:
            child.exits += 1
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(child.exits, 6)))
            if self._stopping:
                return
            try:
                await self._spawn(child)  # its reader takes over from here
                return
            except (SpecbridgeError, OSError) as exc:
                log.error("%s: %s; trying again", child.name, exc)

    def _apply(self, child: Child, report: dict[str, Any]) -> None:
        rt = self.runtime
        stats = rt.stats
        for name, args, n in report.get("m", ()):
            fn = getattr(RuntimeMetrics, name, None)
            if name.startswith("_") or name == "attempted" or not callable(fn):
                continue
            fn(rt.metrics, *args, n=n)
            if name == "sent":
                stats.sent[args[0]] = stats.sent.get(args[0], 0) + n
            elif name == "dead":
                stats.dead[args[0]] = stats.dead.get(args[0], 0) + n
            elif name == "retried":
                stats.retried += n
        for target, durations in report.get("ms", {}).items():
            for ms in durations:
                rt.metrics.attempted(target, ms)
        if "seen" in report:
            child.seen.update(report["seen"])
            child.unsent.update(report["unsent"])
            child.limits.update(report.get("limits", {}))
        if "inflight" in report:
            child.inflight = int(report["inflight"])
        if "tokens" in report:
            child.tokens = report["tokens"]

    async def stop(self, drain_s: float) -> None:
        """Ask every child to finish its sends (within `drain_s`) and exit; kill what outlives that."""
        self._stopping = True
        await asyncio.gather(*(self._stop_child(c, drain_s) for c in self.children), return_exceptions=True)

    async def _stop_child(self, child: Child, drain_s: float) -> None:
        proc = child.proc
        if proc is None:
            return
        if proc.returncode is None:
            child.send({"stop": drain_s})
            if proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), drain_s + 10)
            except TimeoutError:
                log.error("%s did not stop; killed (its claimed messages come back when their leases run out)", child.name)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if child.reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(child.reader, 5)
        child.ready = False

    async def restart(self) -> None:
        """Stop the children and start them with the runtime's current configuration (after a hot reload)."""
        await self.stop(10.0)
        self._stopping = False
        self.assigned = plan(self.runtime.bridge)
        await self.start()

    # -- feeding -------------------------------------------------------------------------
    def _child(self, target: str) -> Child | None:
        i = self.assigned.get(target)
        return next((c for c in self.children if c.index == i), None)

    def room(self, target: str, limit: int) -> bool:
        """Whether `target`'s process has room for one more handed message: what its senders hold
        unsent, what was handed since it last said so, and what is being journalled for it, below the
        limit its sender last reported (`limit` until it has)."""
        c = self._child(target)
        if c is None or not c.ready:
            return False
        outstanding = c.unsent.get(target, 0) + c.handed.get(target, 0) - c.seen.get(target, 0) + self._reserved.get(target, 0)
        return outstanding < c.limits.get(target, limit)

    def reserve(self, target: str, n: int) -> None:
        self._reserved[target] = self._reserved.get(target, 0) + n

    def hand(self, m: Any) -> bool:
        """Send a message journalled claimed to its target's process (batched per turn of the event loop).
        False: that process is not running; the caller releases the lease."""
        c = self._child(m.target)
        if c is None or not c.ready:
            return False
        c.handed[m.target] = c.handed.get(m.target, 0) + 1
        c.outbox.append(m)
        self._schedule()
        return True

    def wake(self, targets: Iterable[str]) -> None:
        """New work for these targets: told to their processes once per turn of the event loop, however many records came."""
        self._woken.update(t for t in targets if t in self.assigned)
        if self._woken:
            self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        woken, self._woken = self._woken, set()
        for c in self.children:
            if c.outbox:
                out, c.outbox = c.outbox, []
                c.send({"hand": out, "n": c.handed})
            mine = [t for t in c.targets if t in woken]
            if mine:
                c.send({"wake": mine})

    def paused(self, routes: Iterable[str]) -> None:
        for c in self.children:
            c.send({"paused": sorted(routes)})

    # -- reading -------------------------------------------------------------------------
    def not_ready(self) -> str | None:
        down = [c.name for c in self.children if not c.ready]
        return ("not running: " + "; ".join(down)) if down else None

    def inflight(self) -> int:
        return sum(c.inflight for c in self.children)

    def tokens(self) -> dict[str, list[Any]]:
        """target -> [refreshed, fetches, refreshes_today, alarm] as its process last reported."""
        out: dict[str, list[Any]] = {}
        for c in self.children:
            out.update(c.tokens)
        return out

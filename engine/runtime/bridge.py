"""The bridge runtime: every source record journalled, translated and delivered to every target.

Flow (DESIGN.md): a source adapter hands a record to `receive`, which translates it once per
route target (to get the natural key), journals it durably and only then acknowledges; one
delivery loop per target claims due messages (leases make a crashed worker's claims come back),
sends them within the target's concurrency limit, and records every attempt, retrying with
backoff or giving up to DEAD with the platform's reason. `stop()` drains in-flight sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import InboundMessage, Reply
from engine import logs
from engine.admin.metrics import RuntimeMetrics
from engine.auth import AuthError, TokenCapReached
from engine.bridge.model import Bridge, Route, RouteTarget, Target
from engine.errors import SpecbridgeError
from engine.journal import Attempt, Incoming, Journal, Message, Receipt
from engine.plugins.errors import ExtensionError
from engine.retry import RetryPolicy, decide
from engine.runtime import query, reconcile
from engine.runtime.config import credentials_of, secrets_of
from engine.runtime.procs import DeliveryProcesses, plan
from engine.runtime.target import TargetClient
from engine.spec.loader import SpecSet
from engine.spec.paths import natural_keys
from engine.spec.validate import holds
from engine.translate import MappingSet, TranslateError

log = logging.getLogger("specbridge.runtime")
PAUSED_KEY = "runtime:paused_routes"


@dataclass(slots=True, eq=False)
class _Lane:
    """One target's sender as `receive` sees it: where a message journalled claimed is handed over
    (`launch`, sent within the target's concurrency like a claimed one), and what bounds that (`limit`),
    counting what it has not sent yet and what is being journalled for it."""

    kick: asyncio.Event
    """The sender's wake-up."""
    launch: Callable[[Message], None]
    unsent: int = 0
    reserved: int = 0
    ahead: int = 0
    """How far the sender claims ahead from the journal."""
    hand: int = 0
    """How far ahead it takes hand-overs: deeper than its claims, so that a source with a backlog keeps
    handing records over instead of journalling them due for the sender to claim back (a round trip
    through the journal; with a delivery process, most records took it: its room is known 5 ms late)."""
    conc: int = 1
    tasks: int = 0
    max_tasks: int = 0
    due_at: float = 0.0
    """When the journal's next message falls due (at the start: now, for what a crash left)."""
    look: bool = True
    """The journal may hold due messages (a wake-up: a retry, a replay, a record this lane had no
    room for; and at the start). Until the sender has claimed them, hand-overs leave it room for a
    claim (`conc` at least), so new records never starve what waits in the journal."""
    open: bool = True

    def limit(self) -> int:
        """Unsent messages the sender may hold before hand-overs stop: its hand-over depth, or while the
        journal may hold due messages, less than the point where it claims, so that it does."""
        return self.ahead - self.conc if self.look else self.hand

    def room(self) -> bool:
        return self.open and self.tasks < self.max_tasks and self.unsent + self.reserved < self.limit()


@dataclass(slots=True)
class Stats:
    received: int = 0
    duplicates: int = 0
    rejected: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    retried: int = 0


def natural_key(iface: Any, message: Any, fallback: bytes) -> str:
    """The interface's natural key from the translated message (one part per item of a keyed list),
    or a hash of the source record when the interface declares none or the message lacks it."""
    keys = natural_keys(message, iface.spec.key)
    if not any(k.strip("|") for k in keys):
        return "sha256:" + hashlib.sha256(fallback).hexdigest()[:32]
    return ";".join(keys)


def _when(rt: RouteTarget, record: Any) -> bool:
    if rt.when is None:
        return True
    if isinstance(record, list) and record:  # grouped view rows: header columns repeat in every row
        record = record[0]
    return isinstance(record, dict) and holds(rt.when, record, record)


def platform_digest(specset: SpecSet, pid: str) -> str:
    """A platform's spec as a hash, so a reload rebuilds only what uses a platform that changed.
    Common code tables and groups count for every platform: any of them may use one."""
    h = hashlib.sha256(pid.encode())
    ps = specset.platforms.get(pid)
    parts: list[Any] = [] if ps is None else [
        ps.platform, *(ps.interfaces[k].spec for k in sorted(ps.interfaces)),
        *(ps.groups[k][0] for k in sorted(ps.groups)), *(ps.codes[k][0] for k in sorted(ps.codes))]
    parts += [*(specset.common_groups[k][0] for k in sorted(specset.common_groups)),
              *(specset.common_codes[k][0] for k in sorted(specset.common_codes))]
    for p in parts:
        h.update(msgspec.json.encode(p))
    return h.hexdigest()


def target_digest(t: Target, specset: SpecSet, secrets: dict[str, Any], creds: dict[str, Any]) -> str:
    """Everything a TargetClient is built from, as a hash (secret values go into it, never out)."""
    h = hashlib.sha256(msgspec.json.encode(t))
    h.update(platform_digest(specset, t.platform).encode())
    for kind, values in (("secret", secrets), ("credential", creds)):
        for k in sorted(values):
            v = values[k]
            h.update(f"\0{kind}:{k}\0".encode())
            h.update(v if isinstance(v, bytes) else str(v).encode())
    return h.hexdigest()


def _same_token_source(a: TargetClient, b: TargetClient) -> bool:
    """A token `a` holds is good for `b`: the same platform instance, auth settings and credentials."""
    return (a.tokens is not None and b.tokens is not None and a.target.platform == b.target.platform
            and a.target.base_url == b.target.base_url and a.credentials == b.credentials
            and msgspec.json.encode(a.platform.platform.auth) == msgspec.json.encode(b.platform.platform.auth))


class BridgeRuntime:
    def __init__(self, bridge: Bridge, specset: SpecSet, mappings: MappingSet, *, base_dir: Path,
                 clock: Callable[[], float] = time.time, specs_dir: Path | None = None,
                 local_targets: Collection[str] | None = None, metrics: Any = None) -> None:
        """`specs_dir`: where `specset` and `mappings` came from (delivery processes load them again).
        `local_targets` and `metrics`: a delivery process's (engine/runtime/worker.py): the targets
        whose senders it runs, and the relay its metric events go back through."""
        self.bridge = bridge
        self.specset = specset
        self.mappings = mappings
        self.base_dir = base_dir
        self.clock = clock
        self.specs_dir = specs_dir
        self.journal: Journal | None = None
        self.targets: dict[str, TargetClient] = {}
        self.stats = Stats()
        self.metrics: RuntimeMetrics = metrics if metrics is not None else RuntimeMetrics(clock)
        self._only = None if local_targets is None else set(local_targets)
        self.procs: DeliveryProcesses | None = None
        """The delivery processes running other targets' senders (`delivery.processes`), once started."""
        self.paused: set[str] = set()
        """Routes an operator paused: their messages stay journalled, undelivered (kept in the journal's kv)."""
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake: dict[str, asyncio.Event] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._lanes: dict[str, _Lane] = {}
        self._by_source: tuple[Bridge, dict[str, list[Route]]] | None = None
        self._digests: dict[str, str] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self.reloads = 0
        self.reload_failures = 0
        self.last_reload_error: str | None = None
        """Hot reload (engine/runtime/reload.py): configurations taken, refused, and why the last was (None once one is taken)."""

    # -- life cycle -----------------------------------------------------------------------
    async def open_journal(self) -> Journal:
        """Open the bridge's journal (start does; `specbridge backfill` journals without delivering)."""
        if self.journal is None:
            jpath = self.base_dir / self.bridge.journal.path
            jpath.parent.mkdir(parents=True, exist_ok=True)
            jc = self.bridge.journal
            self.journal = await Journal.open(str(jpath), synchronous=jc.synchronous, lease_s=jc.lease_s)
        return self.journal

    async def start(self) -> None:
        await self.open_journal()
        assert self.journal is not None
        self.paused = set(msgspec.json.decode(await self.journal.kv_get(PAUSED_KEY) or "[]"))
        secrets = secrets_of(self.bridge, self.base_dir)
        logs.register_secrets(secrets.values())  # masked in every log line from now on
        for name, t in self.bridge.targets.items():
            creds = credentials_of(t.credentials, secrets, self.base_dir)
            logs.register_credentials(creds)
            self.targets[name] = TargetClient(name, t, self.specset.platforms[t.platform], secrets, creds, kv=self.journal)
            self._digests[name] = target_digest(t, self.specset, secrets, creds)
            self._wake[name] = asyncio.Event()
        if self._only is None and self.bridge.delivery.processes:
            if self.specs_dir is None:
                raise SpecbridgeError("delivery processes load the specs again: the runtime needs its specs_dir")
            self.procs = DeliveryProcesses(self, self.specs_dir)
        for name in self.targets:
            if self.runs_here(name):
                self._start_loop(name)
        if self.procs is not None:
            await self.procs.start()

    def runs_here(self, target: str) -> bool:
        """Whether `target`'s sender runs in this process (else in a delivery process)."""
        if self._only is not None:
            return target in self._only
        return self.procs is None or not self.procs.remote(target)

    def _start_loop(self, name: str) -> None:
        self._loops[name] = task = asyncio.create_task(self._deliver_loop(name), name=f"deliver:{name}")
        self._workers.append(task)

    async def stop(self, drain_s: float = 10.0) -> None:
        """Graceful: stop claiming, let in-flight sends finish (bounded), close everything."""
        self._stopping.set()
        for ev in self._wake.values():
            ev.set()
        procs = asyncio.ensure_future(self.procs.stop(drain_s)) if self.procs is not None else None
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=drain_s)
        if procs is not None:
            await procs
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await asyncio.gather(*self._retiring, return_exceptions=True)  # clients a reload replaced
        for t in self.targets.values():
            await t.close()
        if self.journal is not None:
            await self.journal.close()

    # -- operating (the admin API) --------------------------------------------------------
    def not_ready(self) -> str | None:
        """Why the bridge cannot take and deliver messages right now (for /ready), or None."""
        if self._stopping.is_set():
            return "stopping"
        if self.journal is None:
            return "journal not open"
        down = sorted(n for n in self.targets if self.runs_here(n) and (n not in self._loops or self._loops[n].done()))
        if down:
            return "delivery loop not running: " + ", ".join(down)
        return self.procs.not_ready() if self.procs is not None else None

    def inflight(self) -> set[asyncio.Task[None]]:
        """This process's deliveries under way."""
        return self._inflight

    def inflight_count(self) -> int:
        """Deliveries under way in this process and its delivery processes."""
        return len(self._inflight) + (self.procs.inflight() if self.procs is not None else 0)

    def token_states(self) -> dict[str, tuple[int, int, int, bool]]:
        """target -> (tokens obtained, token requests, obtained today, alarm), wherever its sender runs."""
        out: dict[str, tuple[int, int, int, bool]] = {}
        for name, c in self.targets.items():
            if self.runs_here(name) and (tm := c.tokens) is not None:
                out[name] = (tm.refreshed, tm.fetches, tm.refreshes_today, bool(tm.alarm))
        if self.procs is not None:
            for name, v in self.procs.tokens().items():
                out[name] = (int(v[0]), int(v[1]), int(v[2]), bool(v[3]))
        return out

    def wake(self, target: str | None = None) -> None:
        """Look for due messages now (after a replay or a resume) instead of at the next poll."""
        if self.procs is not None:
            self.procs.wake(self._wake if target is None else (target,))
        for name in self._wake if target is None else (target,):
            if (lane := self._lanes.get(name)) is not None:
                lane.look = True
            if (ev := self._wake.get(name)) is not None:
                ev.set()

    async def pause(self, route_id: str) -> None:
        """Hold a route's deliveries; messages keep being journalled. Survives a restart."""
        self.paused.add(route_id)
        await self._save_paused()

    async def resume(self, route_id: str) -> None:
        """Deliver the route again, starting with what it held."""
        self.paused.discard(route_id)
        await self._save_paused()
        for route in self.bridge.routes:
            if route.id == route_id:
                for rt in route.to:
                    self.wake(rt.target)

    async def _save_paused(self) -> None:
        assert self.journal is not None
        await self.journal.kv_set(PAUSED_KEY, msgspec.json.encode(sorted(self.paused)).decode())
        if self.procs is not None:
            self.procs.paused(self.paused)

    # -- hot reload (engine/runtime/reload.py) --------------------------------------------
    def swap(self, bridge: Bridge, specset: SpecSet, mappings: MappingSet) -> dict[str, list[str]]:
        """Take a checked configuration while running. New target clients are built first (a secret
        that cannot be read raises and nothing changes); then one step with no await switches it all,
        so each receive and each claim sees one configuration. A send in flight finishes with the
        client it started with, which is closed after its sends; a removed target's loop finishes its
        batch and ends (its messages stay journalled); an unchanged target keeps its client. A client
        replaced with the same platform instance and credentials hands on its token: none is spent.
        Returns the target names added, changed, removed and whose token was kept."""
        if bridge.journal != self.bridge.journal:
            raise SpecbridgeError("journal settings changed: the journal moves only with a restart")
        if bridge.delivery != self.bridge.delivery:
            raise SpecbridgeError("delivery settings changed: delivery processes are set up only at a restart")
        new_plan = plan(bridge) if self.procs is not None else None
        if self.procs is not None and new_plan is not None:
            moved = sorted(n for n in set(bridge.targets) & set(self.bridge.targets) if (n in new_plan) != self.procs.remote(n))
            if moved:
                raise SpecbridgeError(f"target(s) {', '.join(moved)} would move between the bridge's process and a delivery"
                                      " process (a synchronous route added or removed): that takes a restart")
        secrets = secrets_of(bridge, self.base_dir)
        logs.register_secrets(secrets.values())  # a rotated secret is masked like the first one
        fresh: dict[str, tuple[TargetClient, str]] = {}
        for name, t in bridge.targets.items():
            creds = credentials_of(t.credentials, secrets, self.base_dir)
            logs.register_credentials(creds)
            digest = target_digest(t, specset, secrets, creds)
            if name not in self.bridge.targets or self._digests.get(name) != digest:
                fresh[name] = (TargetClient(name, t, specset.platforms[t.platform], secrets, creds, kv=self.journal), digest)
        before = self.bridge.targets
        out: dict[str, list[str]] = {"added": [], "changed": [], "removed": [n for n in before if n not in bridge.targets],
                                     "tokens_kept": []}
        inflight = set(self._inflight)
        self.bridge, self.specset, self.mappings = bridge, specset, mappings
        for name, (client, digest) in fresh.items():
            self._digests[name] = digest
            if name in before:
                old = self.targets[name]
                if _same_token_source(old, client):
                    client.tokens = old.tokens
                    client.tokens.rebind(client._fetch_token)  # type: ignore[union-attr]  # refreshes go out through the new client
                    out["tokens_kept"].append(name)
                self.targets[name] = client
                self._retire(name, old, inflight)
                self._wake[name].set()
                out["changed"].append(name)
            else:
                self.targets[name] = client
                self._wake[name] = asyncio.Event()
                if new_plan is None or name not in new_plan:
                    self._start_loop(name)
                out["added"].append(name)
        for name in out["removed"]:
            self._wake.pop(name).set()
            self._digests.pop(name, None)
            loop = self._loops.get(name)
            self._retire(name, self.targets[name], {loop} if loop is not None else set())  # listed until drained: /ready stays up
        if self.procs is not None:  # the delivery processes take the new configuration by starting again (leases keep it safe)
            task = asyncio.create_task(self.procs.restart(), name="restart-delivery-processes")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return out

    def _retire(self, name: str, old: TargetClient, waits: set[asyncio.Task[None]]) -> None:
        """Close `old` once the sends that may use it are over: `waits` (the deliveries in flight at the
        swap, or a removed target's loop), then any other send through it (a synchronous query), each
        of which holds a slot of its semaphore until it ends (bounded by its timeout)."""

        async def retire() -> None:
            if waits:
                await asyncio.wait(waits)
            for w in waits:
                if w in self._workers:
                    self._workers.remove(w)
                if self._loops.get(name) is w:
                    del self._loops[name]
            if self.targets.get(name) is old:  # a removed target, drained (a changed one already has its new client)
                del self.targets[name]
            held = 0

            async def take_slots() -> None:
                nonlocal held
                for _ in range(old.target.concurrency):
                    await old.semaphore.acquire()
                    held += 1

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(take_slots(), old.target.timeout_s + 5)
            try:
                await old.close()
            finally:
                for _ in range(held):
                    old.semaphore.release()

        task = asyncio.create_task(retire(), name=f"retire:{name}")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -- inbound --------------------------------------------------------------------------
    def routes_for(self, source: str, bridge: Bridge | None = None) -> list[Route]:
        """The source's routes in `bridge` (the current one by default), worked out once per Bridge
        object: a hot-reload swap installs a new object, so the next call works them out again."""
        bridge = bridge or self.bridge
        memo = self._by_source
        if memo is None or memo[0] is not bridge:
            by_source: dict[str, list[Route]] = {}
            for r in bridge.routes:
                by_source.setdefault(r.source, []).append(r)
            memo = self._by_source = (bridge, by_source)
        return memo[1].get(source, [])

    def sink_for(self, source: str) -> Callable[[InboundMessage], Any]:
        async def sink(msg: InboundMessage) -> Reply:
            record = msg.body if not isinstance(msg.body, (bytes, bytearray)) else msgspec.json.decode(msg.body)
            if (query_route := query.sync_route(self.bridge, source)) is not None:  # the caller waits for the answer
                return await query.answer(self, source, query_route, record)
            ids = await self.receive(source, record)
            return Reply(msgspec.json.encode({"accepted": len(ids)}))

        async def many(msgs: Sequence[InboundMessage]) -> list[Reply | Exception]:
            if query.sync_route(self.bridge, source) is not None:  # each caller waits for its own answer
                replies: list[Reply | Exception] = []
                for m in msgs:
                    try:
                        replies.append(await sink(m))
                    except Exception as exc:  # this message's failure, not the others'
                        replies.append(exc)
                return replies
            records = [m.body if not isinstance(m.body, (bytes, bytearray)) else msgspec.json.decode(m.body) for m in msgs]
            return [r if isinstance(r, Exception) else Reply(msgspec.json.encode({"accepted": len(r)}))
                    for r in await self.receive_many(source, records)]

        sink.many = many  # type: ignore[attr-defined]  # see adapters.base.ManySink
        return sink

    async def receive(self, source: str, record: Any) -> list[int]:
        """Journal one source record for each route target; durable before this returns.

        A new message its target's sender has room for is journalled claimed (one transaction) and
        handed to that sender in memory: no claim query, no wake-up, no extra commit. Otherwise
        (sender full or looking at its backlog, route paused, a duplicate) it is journalled due and
        the sender claims it from the journal, as it does retries, backlog and a crash's leftovers."""
        # one configuration throughout, whatever a hot reload swaps in while this awaits the journal
        bridge, specset, mappings = self.bridge, self.specset, self.mappings
        self._received(source, 1)
        ids: list[int] = []
        for rec, failed in self._incoming(source, record, bridge, specset, mappings):
            receipt = await self._journal_one(rec)
            self._journalled(source, rec, receipt, failed)
            ids.append(receipt.id)
        return ids

    async def receive_many(self, source: str, records: Sequence[Any]) -> list[list[int] | Exception]:
        """`receive` for many records at once (a poller's window): one journal call and one wake-up
        for them all. Per record, its message ids, or the exception that kept it out (it was not
        journalled whole: the source offers it again)."""
        bridge, specset, mappings = self.bridge, self.specset, self.mappings
        out: list[list[int] | Exception] = []
        todo: list[tuple[int, Incoming, TranslateError | None]] = []
        # With delivery processes this process is not the one that limits throughput, and its loop is on
        # every send's path (the pipe, and whatever it serves): it translates a window a record per turn,
        # so no turn waits behind a whole window. Alone, every extra turn costs throughput: one turn.
        # (bench/bridge.py: +3% with a delivery process, -7% in one process, 6-8 interleaved pairs each.)
        turns = self.procs is not None
        self._received(source, len(records))
        for i, record in enumerate(records):
            if turns and i:
                await asyncio.sleep(0)
            try:
                todo.extend((i, rec, failed) for rec, failed in self._incoming(source, record, bridge, specset, mappings))
            except Exception as exc:  # this record's failure, not the window's
                out.append(exc)
            else:
                out.append([])
        receipts = await self._journal_many([rec for _, rec, _ in todo])
        for (i, rec, failed), got in zip(todo, receipts, strict=True):
            ids = out[i]
            if isinstance(got, Exception):
                out[i] = got
            elif isinstance(ids, list):
                self._journalled(source, rec, got, failed)
                ids.append(got.id)
        return out

    def _received(self, source: str, n: int) -> None:
        self.stats.received += n
        self.metrics.received(source, n)

    def _incoming(self, source: str, record: Any, bridge: Bridge, specset: SpecSet,
                  mappings: MappingSet) -> list[tuple[Incoming, TranslateError | None]]:
        """What `record` becomes: one message per route target it passes, translated (or failed)."""
        assert self.journal is not None
        src = bridge.sources[source]
        raw = msgspec.json.encode(record)
        out: list[tuple[Incoming, TranslateError | None]] = []
        for route in self.routes_for(source, bridge):
            for rt in route.to:
                if not _when(rt, record):
                    continue
                target = bridge.targets[rt.target]
                iface = specset.platforms[target.platform].interfaces[rt.interface]
                translated: bytes | None = None
                key: str
                failed: TranslateError | None = None
                try:
                    msg = self.translate(src.spec, route, rt, record, bridge=bridge, mappings=mappings)
                    translated = msgspec.json.encode(msg)
                    key = natural_key(iface, msg, raw)
                except TranslateError as exc:
                    failed = exc
                    key = "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
                out.append((Incoming(iface.qualified_id, rt.target, raw, key, route.id, translated), failed))
        return out

    def _journalled(self, source: str, rec: Incoming, receipt: Receipt, failed: TranslateError | None) -> None:
        if failed is not None or log.isEnabledFor(logging.DEBUG):
            with logs.message_context(receipt.id, target=rec.target, interface=rec.interface, route=rec.route):
                if failed is not None:
                    log.warning("translation failed at receive, delivery will report it", extra={"reason": str(failed)})
                log.debug("journalled from %s%s", source, " (duplicate)" if receipt.duplicate else "")
        if receipt.duplicate:
            self.stats.duplicates += 1

    def _sender(self, rec: Incoming) -> tuple[bool, _Lane | None, DeliveryProcesses | None]:
        """Whether `rec` can go to its sender claimed (it has room, the route runs), and that sender:
        this process's lane, or the delivery process the pipe reaches. Reserves the room taken."""
        lane = self._lanes.get(rec.target)
        procs = self.procs if lane is None and self.procs is not None and self.procs.remote(rec.target) else None
        if procs is not None:
            t = self.bridge.targets.get(rec.target)  # None: a reload removed it while this record was translated
            room = procs.room(rec.target, 2 * max(1, t.concurrency if t is not None else 1))  # until its sender says
        else:
            room = lane is not None and lane.room()
        claim = bool(room) and rec.route not in self.paused and not self._stopping.is_set()
        if claim:
            self._reserve(rec.target, lane, 1)  # counted against the sender's room until it is launched
        return claim, lane, procs

    async def _journal_one(self, rec: Incoming) -> Receipt:
        """Journal one message: claimed and handed to its sender when it has room, else due (`_journal_many`)."""
        got = (await self._journal_many([rec]))[0]
        if isinstance(got, Exception):
            raise got
        return got

    async def _journal_many(self, recs: list[Incoming]) -> list[Receipt | Exception]:
        """Journal messages in one call: each claimed and handed to its sender when it has room, else
        due. The sender runs here (its lane) or in a delivery process (handed over the pipe, within the
        room it reports). Per message its receipt, or the exception that kept it out."""
        assert self.journal is not None
        senders = [self._sender(rec) for rec in recs]
        try:
            got = await self.journal.receive_batch([(rec, claim) for rec, (claim, _, _) in zip(recs, senders, strict=True)])
        finally:
            for rec, (claim, lane, _) in zip(recs, senders, strict=True):
                if claim:
                    self._reserve(rec.target, lane, -1)
        out: list[Receipt | Exception] = []
        for rec, (claim, lane, procs), (ok, value) in zip(recs, senders, got, strict=True):
            if not ok:
                out.append(value)
            elif claim:
                receipt, m = value
                await self._hand(rec, receipt, m, lane, procs)
                out.append(receipt)
            else:
                self._due(rec, value)
                out.append(value)
        return out

    def _due(self, rec: Incoming, receipt: Receipt) -> None:
        if not receipt.duplicate and rec.route not in self.paused:
            self.wake(rec.target)

    async def _hand(self, rec: Incoming, receipt: Receipt, m: Message | None, lane: _Lane | None,
                    procs: DeliveryProcesses | None) -> None:
        """A message journalled claimed goes to its sender (or is due again, if the sender went away)."""
        assert self.journal is not None
        if m is None:  # a duplicate, or a version that waits for an older one: the journal's business
            if not receipt.duplicate:
                self.wake(rec.target)
        elif rec.route not in self.paused and (procs.hand(m) if procs is not None else lane is not None and lane.open):
            if lane is not None:
                lane.launch(m)
        else:  # the sender stopped, or the route was paused, meanwhile
            await self._give_back([m])

    def _reserve(self, target: str, lane: _Lane | None, n: int) -> None:
        if lane is not None:
            lane.reserved += n
        elif self.procs is not None:
            self.procs.reserve(target, n)

    async def take(self, handed: list[Message]) -> None:
        """A delivery process's side of the hand-off: launch messages journalled claimed for its senders
        (or make them due again at once if the sender stopped or the route was paused meanwhile)."""
        back: list[Message] = []
        for m in handed:
            lane = self._lanes.get(m.target)
            if lane is not None and lane.open and m.route not in self.paused:
                lane.launch(m)
            else:
                back.append(m)
        if back:
            await self._give_back(back)

    async def _give_back(self, held: list[Message]) -> None:
        """Messages held and not sent go back to the journal: due again now, not when their leases run
        out (and so not in doubt), and their senders look."""
        if self.journal is not None:
            with contextlib.suppress(Exception):
                await self.journal.release([(m.id, m.lease or "") for m in held])
        for t in {m.target for m in held}:
            self.wake(t)

    def unsent(self) -> dict[str, int]:
        """Per target, messages its sender holds that it has not sent yet (claimed or handed)."""
        return {name: lane.unsent for name, lane in self._lanes.items()}

    def limits(self) -> dict[str, int]:
        """Per target, how many unsent messages its sender takes before hand-overs stop (`_Lane.limit`)."""
        return {name: lane.limit() for name, lane in self._lanes.items()}

    def translate(self, source_spec: str | None, route: Route, rt: RouteTarget, record: Any, *,
                  bridge: Bridge | None = None, mappings: MappingSet | None = None) -> Any:
        """`record` translated for `rt`, with the current configuration or the one given (a caller
        that read it once, so a hot reload cannot change it halfway)."""
        bridge, mappings = bridge or self.bridge, mappings or self.mappings
        target = bridge.targets[rt.target]
        tref = f"{target.platform}/{rt.interface}"
        if rt.mapping:
            if route.mapping:
                record = mappings.get(route.mapping).translate(record)
            return mappings.get(rt.mapping).translate(record)
        if source_spec is None:
            return record
        return mappings.route(source_spec, tref).translate(record)

    # -- outbound -------------------------------------------------------------------------
    def _policy(self, target: str) -> RetryPolicy:
        return self.targets[target].policy  # the client's own: a target a reload removed still drains

    async def _deliver_loop(self, target: str) -> None:
        assert self.journal is not None
        wake = self._wake[target]  # this loop's own: a reload that removes the target drops it, ending the loop
        # Pipelined: messages are claimed ahead, and the next claim goes out while `concurrency` still
        # wait to be sent, so sends never wait for a batch's slowest one, for a claim, or for the journal
        # recording the attempts before them. How far ahead: what the target sends in a quarter of the
        # lease at its recent pace (a claimed message must go out before its lease ends, or it would be
        # claimed and sent again), between 2x concurrency (the old batch) and 8x. New messages come
        # claimed already, handed over by `receive` within the same pace, up to 32x (the lane); the journal is
        # claimed from when woken (a retry scheduled, a replay, a resume, a record the lane had no room
        # for), when its next message falls due, and at least every 5 s (clocks drift; other writers).
        mine: set[asyncio.Task[None]] = set()
        freed = asyncio.Event()
        gap = 0.0  # recent seconds between two sends ending (moving average); 0 until measured
        last_end = 0.0
        poll_at = 0.0

        def launch(m: Message) -> None:
            pending = True

            def sent() -> None:  # once per message: when its send is over (or the task ends without one)
                nonlocal pending, gap, last_end
                if pending:
                    pending = False
                    lane.unsent -= 1
                    now = time.monotonic()
                    if last_end:
                        step = min(now - last_end, lease_s)
                        gap = step if not gap else 0.8 * gap + 0.2 * step
                    last_end = now
                    if lane.unsent <= lane.ahead - lane.conc:  # the loop waits for room to claim ahead: only then is there some
                        freed.set()

            def done(t: asyncio.Task[None]) -> None:
                mine.discard(t)
                self._inflight.discard(t)
                lane.tasks = len(mine)
                sent()
                if lane.tasks < lane.max_tasks and lane.unsent <= lane.ahead - lane.conc:
                    freed.set()

            lane.unsent += 1
            t = asyncio.create_task(self._deliver_safely(target, m, sent))
            mine.add(t)
            lane.tasks = len(mine)
            self._inflight.add(t)
            t.add_done_callback(done)

        lane = self._lanes[target] = _Lane(wake, launch)
        lease_s = self.journal.lease_s
        try:
            while not self._stopping.is_set() and self._wake.get(target) is wake:
                conc = max(1, self.targets[target].target.concurrency)  # per claim: a reload may change it
                pace = 2 if not gap else int(lease_s / 4 / gap / conc)  # sends per quarter lease, in units of conc
                ahead = conc * max(2, min(8, pace))
                lane.ahead, lane.hand, lane.conc = ahead, conc * max(2, min(32, pace)), conc
                lane.max_tasks = lane.hand + 8 * conc
                if lane.unsent > ahead - conc or len(mine) >= lane.max_tasks:  # enough claimed ahead / too many attempts being recorded
                    freed.clear()
                    await freed.wait()
                    continue
                now, mono = self.clock(), time.monotonic()
                if lane.look or now >= lane.due_at or mono >= poll_at:
                    lane.look = False
                    lane.due_at = math.inf  # lowered by next_due below, and by a retry scheduled meanwhile
                    poll_at = mono + 5.0  # and a look at least every 5 s anyway: clocks drift, other processes write
                    room = ahead - lane.unsent
                    msgs = await self.journal.claim_due(target, room, skip_routes=self.paused)
                    for m in msgs:
                        launch(m)
                    if len(msgs) >= room:
                        lane.look = True  # there may be more: claim again (hand-overs meanwhile leave room for it)
                    else:
                        due = await self.journal.next_due(target, skip_routes=self.paused)
                        if due is not None:
                            lane.due_at = min(lane.due_at, max(now + 0.005, due))
                    continue
                wake.clear()
                # sleep until a wake-up or the next due time
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(0.005, min(poll_at - time.monotonic(), lane.due_at - self.clock())))
            lane.open = False
            if mine:  # a removed target's loop ends once its claimed messages are settled
                await asyncio.wait(mine)
        except asyncio.CancelledError:
            for t in mine:  # stop(): what outlived the drain is cancelled with the loop (its lease brings it back)
                t.cancel()
            raise
        finally:
            lane.open = False
            if self._lanes.get(target) is lane:
                del self._lanes[target]

    def _falls_due(self, target: str, at: float) -> None:
        """A message of `target` is due at `at` (a retry): its sender claims then, not at its next poll."""
        lane = self._lanes.get(target)
        if lane is not None and at < lane.due_at:
            lane.due_at = at
            lane.kick.set()

    async def _deliver_safely(self, target: str, m: Message, sent: Callable[[], None] | None = None) -> None:
        """A bug or an unforeseen failure must not strand a claimed message: record it, retry later."""
        try:
            with logs.message_context(m.id, target=target, interface=m.interface, route=m.route):
                await self._deliver(target, m, sent)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            with logs.message_context(m.id, target=target, interface=m.interface, route=m.route):
                log.exception("delivery of #%d to %s failed unexpectedly", m.id, target)
            assert self.journal is not None
            reason = f"{type(exc).__name__}: {exc}"[:300]
            with contextlib.suppress(Exception):
                att = Attempt("retry", "internal", error=reason)
                await self.journal.schedule_retry(m.id, self.clock() + 30, reason, attempt=att, lease=m.lease)
                self.metrics.retried(target, m.interface, m.route, "internal")

    async def _deliver(self, target: str, m: Message, sent: Callable[[], None] | None = None) -> None:
        """One attempt; `sent()` is called once the platform has answered (or the send failed)."""
        assert self.journal is not None
        j = self.journal
        client = self.targets[target]
        iid = m.interface.partition("/")[2]
        iface = client.platform.interfaces[iid]
        if await query.drop_orphan(self, m):  # a query whose caller is gone: not sent
            return
        try:
            if m.translated is None:
                route = next(r for r in self.bridge.routes if r.id == m.route)
                rt = next(t for t in route.to if t.target == target and t.interface == iid)
                msg = self.translate(self.bridge.sources[route.source].spec, route, rt, msgspec.json.decode(m.source or b"null"))
                await j.mark_translated(m.id, msgspec.json.encode(msg), lease=m.lease)
            else:
                msg = msgspec.json.decode(m.translated)
        except (TranslateError, StopIteration, KeyError) as exc:
            await j.mark_dead(m.id, f"translation: {exc}", attempt=Attempt("fatal", "translate", error=str(exc)), lease=m.lease)
            self.stats.dead[target] = self.stats.dead.get(target, 0) + 1
            self.metrics.dead(target, m.interface, m.route, "translate")
            log.warning("dead: translation: %s", exc)
            return
        is_json = iface.request is not None and iface.request.format == "json"
        check = iface.validate_request(msg, plaintext=True) if is_json else None  # the decoded message: no re-encode
        if check is not None and not check.valid:
            # a misbehaving plugin check or type is named (its message carries plugin and extension, no value)
            reason = "; ".join(f"{e.path}: {e.rule}" + (f" ({e.message})" if e.rule == "plugin" else "") for e in check.errors[:5])
            att = Attempt("fatal", "validate", error=reason)
            await j.mark_dead(m.id, f"invalid for {iface.qualified_id}: {reason}", attempt=att, lease=m.lease)
            self.stats.dead[target] = self.stats.dead.get(target, 0) + 1
            self.metrics.dead(target, m.interface, m.route, "validate")
            log.warning("dead: invalid for %s: %s", iface.qualified_id, reason)
            return
        if m.in_doubt and await reconcile.settle(self, target, m, client, iface, msg):  # it may have arrived: ask first
            return
        # A claimed message must be over before its lease runs out, or the journal hands it out again and
        # it goes twice. Its sender claims no more than it sends in a quarter lease at its recent pace, but
        # a platform that turns slow (every request to its timeout) leaves a queue behind: what is still
        # waiting for a slot when there is no longer a timeout's worth of lease left goes back, unsent.
        # (A second to record the outcome in, a tenth of the lease if that is shorter; a lease too short for
        # a send at all, which `specbridge check` refuses, is left as it was.)
        lease_s, timeout_s = j.lease_s, client.target.timeout_s
        spare = timeout_s + min(1.0, lease_s / 10)
        start_by = m.next_attempt_at - spare if m.lease and m.next_attempt_at is not None and lease_s > spare else None
        try:
            try:
                res = await client.send(iface, msg, go=None if start_by is None else lambda: self.clock() <= start_by)
            finally:
                if sent is not None:
                    sent()
            if res is None:
                log.warning("not sent: its lease ran out while it waited for a free slot (%s is slow); due again now", target)
                await self._give_back([m])
                return
        except TokenCapReached as exc:
            await j.schedule_retry(m.id, exc.resets_at, str(exc), attempt=Attempt("wait", "token", error=str(exc)), lease=m.lease)
            self.metrics.retried(target, m.interface, m.route, "wait")
            return
        except AuthError as exc:  # bad credentials: the alarm is raised; hold messages, don't burn the lock-out
            log.error("ALARM: %s", exc)
            await j.schedule_retry(m.id, self.clock() + 300, str(exc), attempt=Attempt("reauth", "token", error=str(exc)), lease=m.lease)
            self.metrics.retried(target, m.interface, m.route, "reauth")
            return
        except ExtensionError as exc:  # a plugin's signer, step or transport raised or answered wrongly: DEAD, replayable once fixed
            await j.mark_dead(m.id, str(exc), attempt=Attempt("fatal", "plugin", error=str(exc)), lease=m.lease)
            self.stats.dead[target] = self.stats.dead.get(target, 0) + 1
            self.metrics.dead(target, m.interface, m.route, "plugin")
            log.warning("dead: %s", exc)
            return
        now = self.clock()
        self.metrics.attempted(target, res.duration_ms)
        d = decide(self._policy(target), res.outcome, attempts=m.attempts + 1, cycle_at=m.cycle_at, now=now, reauthed=res.reauthed)
        body = res.response.body[:2048] if res.response is not None else None
        att = Attempt(res.outcome.action, res.prepared.summary if res.prepared else "", res.response.status if res.response else None,
                      res.verdict.code if res.verdict else None, body, res.duration_ms,
                      None if res.outcome.action == "ok" else res.outcome.reason)
        if d.kind == "sent":
            await j.mark_sent(m.id, attempt=att, lease=m.lease)
            self.stats.sent[target] = self.stats.sent.get(target, 0) + 1
            self.metrics.sent(target, m.interface, m.route)
            log.info("sent (attempt %d, %d ms)", m.attempts + 1, res.duration_ms or 0)
        elif d.kind in ("retry", "reauth"):
            assert d.next_attempt_at is not None or d.kind == "reauth"
            # no complete answer in time: the request may have arrived; the next attempt asks first where it can
            unsure = res.response is None and "no complete answer" in d.reason
            await j.schedule_retry(m.id, d.next_attempt_at or now + 1, d.reason, attempt=att, lease=m.lease, in_doubt=unsure)
            self._falls_due(target, d.next_attempt_at or now + 1)  # the loop may be asleep until a later due time
            self.stats.retried += 1
            self.metrics.retried(target, m.interface, m.route, att.outcome)
            log.warning("%s scheduled (attempt %d): %s", d.kind, m.attempts + 1, d.reason)
        else:
            await j.mark_dead(m.id, d.reason, attempt=att, lease=m.lease)
            self.stats.dead[target] = self.stats.dead.get(target, 0) + 1
            self.metrics.dead(target, m.interface, m.route, "platform")
            log.warning("dead after attempt %d: %s", m.attempts + 1, d.reason)

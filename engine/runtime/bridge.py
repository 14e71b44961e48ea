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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import InboundMessage, Reply
from engine.auth import AuthError, TokenCapReached
from engine.bridge.model import Bridge, Route, RouteTarget
from engine.journal import Attempt, Journal, Message
from engine.retry import RetryPolicy, decide
from engine.runtime.config import credentials_of, secrets_of
from engine.runtime.target import TargetClient
from engine.spec.loader import SpecSet
from engine.spec.paths import natural_keys
from engine.spec.validate import holds
from engine.translate import MappingSet, TranslateError

log = logging.getLogger("specbridge.runtime")


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


class BridgeRuntime:
    def __init__(self, bridge: Bridge, specset: SpecSet, mappings: MappingSet, *, base_dir: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.bridge = bridge
        self.specset = specset
        self.mappings = mappings
        self.base_dir = base_dir
        self.clock = clock
        self.journal: Journal | None = None
        self.targets: dict[str, TargetClient] = {}
        self.stats = Stats()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._wake: dict[str, asyncio.Event] = {}
        self._inflight: set[asyncio.Task[None]] = set()

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        jpath = self.base_dir / self.bridge.journal.path
        jpath.parent.mkdir(parents=True, exist_ok=True)
        self.journal = await Journal.open(str(jpath), synchronous=self.bridge.journal.synchronous)
        secrets = secrets_of(self.bridge, self.base_dir)
        for name, t in self.bridge.targets.items():
            creds = credentials_of(t.credentials, secrets, self.base_dir)
            self.targets[name] = TargetClient(name, t, self.specset.platforms[t.platform], secrets, creds, kv=self.journal)
            self._wake[name] = asyncio.Event()
        for name in self.targets:
            self._workers.append(asyncio.create_task(self._deliver_loop(name), name=f"deliver:{name}"))

    async def stop(self, drain_s: float = 10.0) -> None:
        """Graceful: stop claiming, let in-flight sends finish (bounded), close everything."""
        self._stopping.set()
        for ev in self._wake.values():
            ev.set()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=drain_s)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for t in self.targets.values():
            await t.close()
        if self.journal is not None:
            await self.journal.close()

    # -- inbound --------------------------------------------------------------------------
    def routes_for(self, source: str) -> list[Route]:
        return [r for r in self.bridge.routes if r.source == source]

    def sink_for(self, source: str) -> Callable[[InboundMessage], Any]:
        async def sink(msg: InboundMessage) -> Reply:
            record = msg.body if not isinstance(msg.body, (bytes, bytearray)) else msgspec.json.decode(msg.body)
            ids = await self.receive(source, record)
            return Reply(msgspec.json.encode({"accepted": len(ids)}))

        return sink

    async def receive(self, source: str, record: Any) -> list[int]:
        """Journal one source record for each route target; durable before this returns."""
        assert self.journal is not None
        src = self.bridge.sources[source]
        raw = msgspec.json.encode(record)
        ids: list[int] = []
        self.stats.received += 1
        for route in self.routes_for(source):
            for rt in route.to:
                if not _when(rt, record):
                    continue
                target = self.bridge.targets[rt.target]
                iface = self.specset.platforms[target.platform].interfaces[rt.interface]
                translated: bytes | None = None
                key: str
                try:
                    msg = self.translate(src.spec, route, rt, record)
                    translated = msgspec.json.encode(msg)
                    key = natural_key(iface, msg, raw)
                except TranslateError as exc:
                    log.warning("translation failed at receive, delivery will report it", extra={"route": route.id, "reason": str(exc)})
                    key = "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
                receipt = await self.journal.receive(iface.qualified_id, rt.target, raw, key=key, route=route.id, translated=translated)
                if receipt.duplicate:
                    self.stats.duplicates += 1
                ids.append(receipt.id)
                self._wake[rt.target].set()
        return ids

    def translate(self, source_spec: str | None, route: Route, rt: RouteTarget, record: Any) -> Any:
        target = self.bridge.targets[rt.target]
        tref = f"{target.platform}/{rt.interface}"
        if rt.mapping:
            if route.mapping:
                record = self.mappings.get(route.mapping).translate(record)
            return self.mappings.get(rt.mapping).translate(record)
        if source_spec is None:
            return record
        return self.mappings.route(source_spec, tref).translate(record)

    # -- outbound -------------------------------------------------------------------------
    def _policy(self, target: str) -> RetryPolicy:
        r = self.bridge.targets[target].retry
        return RetryPolicy(base_s=r.base_s, factor=r.factor, max_delay_s=r.max_delay_s, max_attempts=r.max_attempts, max_age_s=r.max_age_s)

    async def _deliver_loop(self, target: str) -> None:
        assert self.journal is not None
        client = self.targets[target]
        limit = max(1, client.target.concurrency * 2)
        while not self._stopping.is_set():
            msgs = await self.journal.claim_due(target, limit)
            if not msgs:
                ev = self._wake[target]
                ev.clear()
                due = await self.journal.next_due(target)
                # sleep until the next retry falls due, or a new message wakes us (bounded: clocks drift)
                wait = 5.0 if due is None else min(5.0, max(0.005, due - self.clock()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ev.wait(), timeout=wait)
                continue
            tasks = [asyncio.create_task(self._deliver_safely(target, m)) for m in msgs]
            self._inflight.update(tasks)
            for t in tasks:
                t.add_done_callback(self._inflight.discard)
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver_safely(self, target: str, m: Message) -> None:
        """A bug or an unforeseen failure must not strand a claimed message: record it, retry later."""
        try:
            await self._deliver(target, m)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("delivery of #%d to %s failed unexpectedly", m.id, target)
            assert self.journal is not None
            reason = f"{type(exc).__name__}: {exc}"[:300]
            with contextlib.suppress(Exception):
                att = Attempt("retry", "internal", error=reason)
                await self.journal.schedule_retry(m.id, self.clock() + 30, reason, attempt=att, lease=m.lease)

    async def _deliver(self, target: str, m: Message) -> None:
        assert self.journal is not None
        j = self.journal
        client = self.targets[target]
        iid = m.interface.partition("/")[2]
        iface = client.platform.interfaces[iid]
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
            return
        is_json = iface.request is not None and iface.request.format == "json"
        check = iface.validate_request(msg, plaintext=True) if is_json else None  # the decoded message: no re-encode
        if check is not None and not check.valid:
            reason = "; ".join(f"{e.path}: {e.rule}" for e in check.errors[:5])
            att = Attempt("fatal", "validate", error=reason)
            await j.mark_dead(m.id, f"invalid for {iface.qualified_id}: {reason}", attempt=att, lease=m.lease)
            self.stats.dead[target] = self.stats.dead.get(target, 0) + 1
            return
        try:
            res = await client.send(iface, msg)
        except TokenCapReached as exc:
            await j.schedule_retry(m.id, exc.resets_at, str(exc), attempt=Attempt("wait", "token", error=str(exc)), lease=m.lease)
            return
        except AuthError as exc:  # bad credentials: the alarm is raised; hold messages, don't burn the lock-out
            log.error("ALARM: %s", exc)
            await j.schedule_retry(m.id, self.clock() + 300, str(exc), attempt=Attempt("reauth", "token", error=str(exc)), lease=m.lease)
            return
        now = self.clock()
        d = decide(self._policy(target), res.outcome, attempts=m.attempts + 1, cycle_at=m.cycle_at, now=now, reauthed=res.reauthed)
        body = res.response.body[:2048] if res.response is not None else None
        att = Attempt(res.outcome.action, res.prepared.summary if res.prepared else "", res.response.status if res.response else None,
                      res.verdict.code if res.verdict else None, body, res.duration_ms,
                      None if res.outcome.action == "ok" else res.outcome.reason)
        if d.kind == "sent":
            await j.mark_sent(m.id, attempt=att, lease=m.lease)
            self.stats.sent[target] = self.stats.sent.get(target, 0) + 1
        elif d.kind in ("retry", "reauth"):
            assert d.next_attempt_at is not None or d.kind == "reauth"
            await j.schedule_retry(m.id, d.next_attempt_at or now + 1, d.reason, attempt=att, lease=m.lease)
            self.stats.retried += 1
        else:
            await j.mark_dead(m.id, d.reason, attempt=att, lease=m.lease)
            self.stats.dead[target] = self.stats.dead.get(target, 0) + 1

"""Prometheus metrics of one bridge runtime, in its own CollectorRegistry (never the global one), so
several runtimes in one process (tests, a hot-reload swap) never clash.

Two kinds: counters and a latency histogram the runtime bumps as it works (`RuntimeMetrics`), and
gauges read at scrape time (`LiveCollector`): messages by interface and state and the journal's
size come from one grouped query, cached for `ttl_s` (5 s) so a scrape storm or many open
dashboards cannot load the journal.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from engine.journal import Journal
    from engine.runtime.bridge import BridgeRuntime

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RateWindow:
    """Events per minute over the last `window_s` seconds, in one-second buckets (O(window) memory)."""

    def __init__(self, window_s: int = 60) -> None:
        self.window_s = window_s
        self._buckets: Tally[int] = Tally()

    def add(self, now: float, n: int = 1) -> None:
        self._buckets[int(now)] += n
        if len(self._buckets) > 2 * self.window_s:
            self._trim(now)

    def _trim(self, now: float) -> None:
        floor = int(now) - self.window_s
        for second in [s for s in self._buckets if s <= floor]:
            del self._buckets[second]

    def per_minute(self, now: float) -> float:
        self._trim(now)
        return sum(self._buckets.values()) * 60.0 / self.window_s


@dataclass(slots=True)
class RouteActivity:
    """What one route did since start, and lately: the dashboard's rates."""

    sent: int = 0
    failed: int = 0
    sent_rate: RateWindow = field(default_factory=RateWindow)
    failed_rate: RateWindow = field(default_factory=RateWindow)


class RuntimeMetrics:
    """The runtime's counters. `BridgeRuntime` owns one and calls the methods below; the admin
    server attaches a `LiveCollector` to the same registry and serves it on /metrics."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received_total = Counter("specbridge_records_received", "Source records received, by source", ["source"], registry=r)
        self.sent_total = Counter("specbridge_messages_sent", "Messages the platform accepted", ["target", "interface"], registry=r)
        self.retries_total = Counter("specbridge_retries", "Attempts that will be retried, by outcome (retry, reauth, wait, internal...)",
                                     ["target", "interface", "outcome"], registry=r)
        self.dead_total = Counter("specbridge_dead_letters", "Messages given up (DEAD), by stage (translate, validate, plugin, platform)",
                                  ["target", "interface", "stage"], registry=r)
        self.latency = Histogram("specbridge_attempt_duration_seconds", "Duration of delivery attempts (request to verdict), per target",
                                 ["target"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_doubt_total = Counter("specbridge_in_doubt", "Deliveries in doubt after a crash, by what became of them: reconciled"
                                      " (found on the platform, not resent), not_found (asked, then sent), resent (cannot be asked),"
                                      " query_failed (asked, no answer: retried)", ["target", "interface", "outcome"], registry=r)
        self.routes: dict[str, RouteActivity] = {}
        self._live: LiveCollector | None = None
        self._children: dict[tuple[Any, ...], Any] = {}
        """Labelled children by (metric, *labels): `.labels()` checks and locks on every call
        (~1 us each); a record's counters are then plain `inc()`/`observe()` calls."""

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- called by the runtime ------------------------------------------------------------------
    def received(self, source: str, n: int = 1) -> None:
        self._child(self.received_total, source).inc(n)

    def attempted(self, target: str, duration_ms: float | None) -> None:
        """An attempt that reached (or tried to reach) the platform, with its duration."""
        if duration_ms is not None and duration_ms > 0:
            self._child(self.latency, target).observe(duration_ms / 1000.0)

    def sent(self, target: str, interface: str, route: str | None, n: int = 1) -> None:
        """`n`: that many (a delivery process reports its counts, engine/runtime/worker.py)."""
        self._child(self.sent_total, target, interface).inc(n)
        act = self._route(route)
        act.sent += n
        act.sent_rate.add(self.clock(), n)

    def retried(self, target: str, interface: str, route: str | None, outcome: str, n: int = 1) -> None:
        self._child(self.retries_total, target, interface, outcome or "retry").inc(n)
        self._failed(route, n)

    def in_doubt(self, target: str, interface: str, outcome: str, n: int = 1) -> None:
        """An in-doubt message was reconciled, found missing, resent unasked, or its query failed (engine/runtime/reconcile.py)."""
        self._child(self.in_doubt_total, target, interface, outcome).inc(n)

    def dead(self, target: str, interface: str, route: str | None, stage: str, n: int = 1) -> None:
        self._child(self.dead_total, target, interface, stage).inc(n)
        self._failed(route, n)

    def _failed(self, route: str | None, n: int = 1) -> None:
        act = self._route(route)
        act.failed += n
        act.failed_rate.add(self.clock(), n)

    def _route(self, route: str | None) -> RouteActivity:
        key = route or "-"
        act = self.routes.get(key)
        if act is None:
            act = self.routes[key] = RouteActivity()
        return act

    # -- read by the admin server ---------------------------------------------------------------
    def attach(self, runtime: BridgeRuntime, ttl_s: float = 5.0) -> LiveCollector:
        """The scrape-time gauges of this runtime (registered once, however many servers ask)."""
        if self._live is None:
            self._live = LiveCollector(runtime, ttl_s)
            self.registry.register(self._live)
        return self._live


@dataclass(slots=True)
class Snapshot:
    taken_at: float = 0.0
    by_interface: dict[str, dict[str, int]] = field(default_factory=dict)
    db_bytes: int = 0
    wal_bytes: int = 0

    @property
    def rows(self) -> int:
        return sum(n for states in self.by_interface.values() for n in states.values())


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class LiveCollector(Collector):
    """Gauges read when scraped: journal counts and size, token refreshes, paused routes, in-flight sends.

    prometheus_client collects synchronously, so the journal part is fetched by `refresh()` (awaited
    by the /metrics handler first) and served from the snapshot."""

    def __init__(self, runtime: BridgeRuntime, ttl_s: float) -> None:
        self.runtime = runtime
        self.ttl_s = ttl_s
        self.snapshot = Snapshot()
        self._flight: asyncio.Future[Snapshot] | None = None

    def journal_path(self) -> str:
        return str(self.runtime.base_dir / self.runtime.bridge.journal.path)

    async def refresh(self) -> Snapshot:
        """The journal's counts, at most ttl_s old; concurrent callers share one query (65 ms at 1M rows)."""
        j = self.runtime.journal
        if j is None or (self.snapshot.taken_at and time.monotonic() - self.snapshot.taken_at < self.ttl_s):
            return self.snapshot
        if self._flight is None:
            self._flight = asyncio.ensure_future(self._take(j))
            self._flight.add_done_callback(lambda _: setattr(self, "_flight", None))
        return await asyncio.shield(self._flight)

    async def _take(self, j: Journal) -> Snapshot:
        stats = await j.stats()
        path = self.journal_path()
        self.snapshot = Snapshot(time.monotonic(), stats, _size(path), _size(path + "-wal"))
        return self.snapshot

    def describe(self) -> list[Metric]:
        return []  # names are dynamic (labels); describing nothing keeps registration free of a collect()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        msgs = GaugeMetricFamily("specbridge_messages", "Messages in the journal, by interface and state", labels=["interface", "state"])
        for iface, states in sorted(snap.by_interface.items()):
            for state, n in sorted(states.items()):
                msgs.add_metric([iface, state], n)
        yield msgs
        size = GaugeMetricFamily("specbridge_journal_bytes", "Size of the journal's files on disk", labels=["file"])
        size.add_metric(["db"], snap.db_bytes)
        size.add_metric(["wal"], snap.wal_bytes)
        yield size
        yield GaugeMetricFamily("specbridge_journal_rows", "Messages stored in the journal (all states)", value=snap.rows)
        by_target = ["target"]
        refreshes = CounterMetricFamily("specbridge_token_refreshes", "Token requests to the platform, by result",
                                        labels=["target", "result"])
        today = GaugeMetricFamily("specbridge_token_refreshes_today", "Tokens obtained today (against the daily cap)", labels=by_target)
        alarm = GaugeMetricFamily("specbridge_token_alarm", "1 while the bad-credentials alarm holds all token requests", labels=by_target)
        for name, (ok, fetches, n_today, alarmed) in sorted(self.runtime.token_states().items()):  # wherever its sender runs
            refreshes.add_metric([name, "ok"], ok)
            refreshes.add_metric([name, "failed"], max(0, fetches - ok))
            today.add_metric([name], n_today)
            alarm.add_metric([name], 1 if alarmed else 0)
        yield refreshes
        yield today
        yield alarm
        paused = GaugeMetricFamily("specbridge_route_paused", "1 while an operator holds the route's deliveries", labels=["route"])
        for route in self.runtime.bridge.routes:
            paused.add_metric([route.id], 1 if route.id in self.runtime.paused else 0)
        yield paused
        yield GaugeMetricFamily("specbridge_inflight_sends", "Deliveries being sent right now", value=self.runtime.inflight_count())
        yield GaugeMetricFamily("specbridge_ready", "1 when the bridge is ready (journal open, delivery loops running)",
                                value=1 if self.runtime.not_ready() is None else 0)

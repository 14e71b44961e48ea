"""Polling a database view by watermark and key: each row becomes one InboundMessage.

Rows are read in keyset order over the cursor columns (watermark, then key), so rows sharing a
watermark value are neither skipped nor repeated between pages. The cursor moves past a row only
after the Sink acknowledged it (the runtime has journalled it) and is saved in a state file the
poller owns, so a restarted poller resumes after the last acknowledged row: every row arrives once,
in order. A crash between the acknowledgement and the save re-delivers that one row (at least once;
the journal's idempotency key absorbs it).

What keyset polling cannot see, and the view's owner must guarantee: a row that becomes visible
with a cursor lower than one already passed (a transaction that commits late with an earlier
watermark, or a row added later to a watermark value already read with a smaller key). Rows that
share a watermark must commit together, or the watermark must be stamped at commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from adapters.base import InboundMessage, ManySink, Reply, Sink, many_of
from adapters.rows import RowPlan, decode_cursor, encode_cursor
from adapters.sql import Database, ViewError
from engine.spec.compiled import CompiledInterface
from engine.spec.model import ViewBinding
from engine.spec.nodes import Node

log = logging.getLogger(__name__)

_STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS view_cursor ("
    " name TEXT PRIMARY KEY, cursor BLOB NOT NULL, delivered INTEGER NOT NULL DEFAULT 0,"
    " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
)


SAVE_EVERY_S = 0.25
"""While rows flow the cursor is written at most this often (and always when a poll ends and when the
poller stops). A cursor written late only makes a restart offer again rows the journal already has,
which their natural keys make duplicates: the same as a cursor lost with the last commits below. A
write per window cost the bridge's process ~40 us per row (a thread hop and a WAL commit)."""


class CursorStore:
    """The poller's own state file: one cursor per poller name, written as acknowledged rows pass.

    WAL with synchronous=NORMAL: a commit survives a killed process; only an OS crash or power cut can
    lose the last commits, and a lost cursor only re-delivers rows the journal already has (its
    idempotency key absorbs them), never skips one. FULL would fsync per row for no added safety.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: str | Path) -> CursorStore:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")  # see the class docstring
        await conn.execute(_STATE_DDL)
        return cls(conn)

    async def load(self, name: str) -> list[Any] | None:
        async with self._conn.execute("SELECT cursor FROM view_cursor WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return None if row is None else decode_cursor(row[0])

    async def save(self, name: str, values: Sequence[Any]) -> None:
        await self._conn.execute(
            "INSERT INTO view_cursor (name, cursor, delivered) VALUES (?, ?, 1) ON CONFLICT (name) DO UPDATE SET"
            " cursor = excluded.cursor, delivered = delivered + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now')",
            (name, encode_cursor(values)),
        )

    async def close(self) -> None:
        await self._conn.close()


def cursor_columns(view: ViewBinding, key: Sequence[str] | None = None) -> list[str]:
    """`order_by` if given, else the watermark then the key; it must end in a unique key."""
    keys = list(view.key or key or [])
    if not keys:
        raise ViewError(f"view {view.name}: no key; keyset polling needs a unique key to break watermark ties")
    cols = list(view.order_by) if view.order_by else [*([view.watermark] if view.watermark else []), *keys]
    missing = [k for k in keys if k not in cols]
    if missing:
        raise ViewError(f"view {view.name}: order_by {cols} lacks key column(s) {missing}; ties would be ambiguous")
    if view.watermark and cols[0] != view.watermark:
        raise ViewError(f"view {view.name}: order_by must start with the watermark {view.watermark}")
    return list(dict.fromkeys(cols))


class ViewPoller:
    """Inbound half of `dbview`: `start(sink)` polls until `stop()`; `poll_once()` drains once."""

    def __init__(
        self,
        interface: str,
        view: ViewBinding,
        db: Database,
        state_path: str | Path,
        *,
        key: Sequence[str] | None = None,
        fields: dict[str, Node] | None = None,
        view_name: str | None = None,
        columns: Sequence[str] | None = None,
        name: str | None = None,
        batch: int = 200,
        interval_s: float = 1.0,
        retry_s: float = 0.5,
        max_retry_s: float = 30.0,
        group_by: Sequence[str] | None = None,
        window: int = 1,
    ) -> None:
        self.interface = interface
        self.window = max(1, window)
        """Rows handed to the sink at once. 1 keeps strict one-at-a-time order; more lets the
        journal's group commit share one fsync across rows. The cursor still only passes a row
        once it and every row before it are acknowledged."""
        self.group_by = list(group_by or [])
        """Rows sharing these columns (consecutive in cursor order: the key should start with them)
        make one message, a list of rows: a lab report's result lines, say. The cursor passes a
        group only once the whole group is acknowledged, so a restart re-offers it whole."""
        self.view_name = view_name or view.name
        """Deployments rename views (xinjiang_mr's spelling varies); the spec's name is the default."""
        self.cursor_cols = cursor_columns(view, key)
        self.key = list(view.key or key or [])
        self.db = db
        self.state_path = Path(state_path)
        self.name = name or f"{interface}@{self.view_name}"
        self.fields = fields
        self.plan = RowPlan(fields)
        self.columns = list(columns) if columns else None
        self.batch = batch
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._store: CursorStore | None = None
        self._cursor: list[Any] | None = None
        self._saved: list[Any] | None = None
        """The cursor as the state file has it (`_cursor` may be ahead of it by up to SAVE_EVERY_S)."""
        self._saved_at = 0.0
        self._sink: Sink | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @classmethod
    def for_interface(cls, ci: CompiledInterface, db: Database, state_path: str | Path, **kw: Any) -> ViewPoller:
        """Binding, key and field formats from the spec; `kw` as for the constructor."""
        view = ci.spec.binding.view if ci.spec.binding else None
        if view is None:
            raise ViewError(f"{ci.qualified_id} has no binding.view")
        fields = ci.request.node.children if ci.request is not None else None
        return cls(ci.qualified_id, view, db, state_path, key=ci.spec.key, fields=fields, **kw)

    @property
    def cursor(self) -> list[Any] | None:
        return self._cursor

    async def open(self) -> None:
        if self._store is None:
            self._store = await CursorStore.open(self.state_path)
            self._cursor = self._saved = await self._store.load(self.name)

    async def start(self, sink: Sink) -> None:
        await self.open()
        self._sink = sink
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"poll {self.name}")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the row in hand (its acknowledgement is saved), then close the state file."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._store is not None:
            await self._save()
            await self._store.close()
            self._store = None

    async def _advance(self, position: list[Any]) -> None:
        """The cursor passes an acknowledged row: written now, or by SAVE_EVERY_S (or at the poll's end)."""
        self._cursor = position
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            await self._save()

    async def _save(self) -> None:
        if self._store is not None and self._cursor is not None and self._cursor != self._saved:
            position = self._cursor
            await self._store.save(self.name, position)
            self._saved, self._saved_at = position, time.monotonic()

    async def _run(self) -> None:
        delay = self.retry_s
        while not self._stop.is_set():
            try:
                ok = await self.poll_once()
            except Exception as exc:  # the database is away, a view was dropped...: back off, keep polling
                log.warning("poll %s: %s: %s", self.name, type(exc).__name__, exc)
                ok = False
            wait = self.interval_s if ok else delay
            delay = self.retry_s if ok else min(delay * 2, self.max_retry_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)

    async def poll_once(self, sink: Sink | None = None) -> bool:
        """Deliver every row after the cursor. False when a row was not acknowledged: the cursor
        stays before it and the next poll offers it again."""
        await self.open()
        if self._task is None:
            self._stop.clear()  # called directly, not from the polling task
        sink = sink or self._sink
        if sink is None:
            raise ViewError(f"poll {self.name}: no sink")
        assert self._store is not None
        try:
            return await self._poll(sink)
        finally:  # what this poll acknowledged is written when it ends, however it ends
            await self._save()

    async def _poll(self, sink: Sink) -> bool:
        if self.group_by:
            return await self._poll_groups(sink)
        # Windows of rows go to the sink one after another; with window > 1 the next window is handed
        # over while the one before waits for its acknowledgements (the journal's commit): the rows in
        # flight are at most two windows, the cursor still passes only an acknowledged prefix, and a
        # row after an unacknowledged one is offered again by the next poll (its natural key makes
        # that a duplicate, not a second message).
        depth = 2 if self.window > 1 else 1
        flight: deque[tuple[asyncio.Future[list[bool]], list[list[Any]]]] = deque()
        try:
            return await self._poll_windows(sink, depth, flight)
        finally:  # cancelled (stop) or failed midway: no window goes on without the poll that owns it
            for fut, _ in flight:
                fut.cancel()

    async def _poll_windows(self, sink: Sink, depth: int, flight: deque[tuple[asyncio.Future[list[bool]], list[list[Any]]]]) -> bool:
        after = self._cursor
        many = many_of(sink)
        while True:
            names, rows = await self._page(after)
            at = self._cursor_at(names) if rows else []
            for i in range(0, len(rows), self.window):
                chunk = rows[i : i + self.window]
                positions = [[r[k] for k in at] for r in chunk]
                if len(chunk) == 1:
                    acks: asyncio.Future[list[bool]] = asyncio.ensure_future(self._deliver_one(sink, names, chunk[0], positions[0]))
                elif many is not None:
                    acks = asyncio.ensure_future(self._deliver_many(many, names, chunk, positions))
                else:
                    acks = asyncio.gather(*(self._deliver(sink, names, r, p) for r, p in zip(chunk, positions, strict=True)))
                flight.append((acks, positions))
                if len(flight) >= depth and not await self._settle(flight):
                    return False
                if self._stop.is_set():
                    return await self._settle_all(flight)
            if len(rows) < self.batch:
                return await self._settle_all(flight)
            after = [rows[-1][k] for k in at]  # read on while the page's last windows are acknowledged

    async def _deliver_one(self, sink: Sink, names: tuple[str, ...], row: Sequence[Any], position: list[Any]) -> list[bool]:
        return [await self._deliver(sink, names, row, position)]

    async def _settle(self, flight: deque[tuple[asyncio.Future[list[bool]], list[list[Any]]]]) -> bool:
        """Wait for the oldest window and move the cursor past its acknowledged prefix; False when a
        row of it was not acknowledged (the windows after it are waited for, and left unacknowledged)."""
        assert self._store is not None
        fut, positions = flight.popleft()
        acks = await fut
        done = next((k for k, ok in enumerate(acks) if not ok), len(acks))  # the acknowledged prefix
        if done:
            await self._advance(positions[done - 1])
        if done < len(acks):
            while flight:
                await flight.popleft()[0]
            return False
        return True

    async def _settle_all(self, flight: deque[tuple[asyncio.Future[list[bool]], list[list[Any]]]]) -> bool:
        while flight:
            if not await self._settle(flight):
                return False
        return True

    async def _page(self, after: Sequence[Any] | None) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
        """One keyset page as column names and value tuples (a database without a tuple read: from its dicts)."""
        read = getattr(self.db, "fetch_rows_after", None)
        if read is not None:
            names, rows = await read(self.view_name, self.columns, self.cursor_cols, after, self.batch)
            return names, rows
        dicts = await self.db.fetch_after(self.view_name, self.columns, self.cursor_cols, after, self.batch)
        names = tuple(dicts[0]) if dicts else ()
        return names, [tuple(d[n] for n in names) for d in dicts]

    def _cursor_at(self, names: tuple[str, ...]) -> list[int]:
        """Where the cursor columns are among the columns read."""
        try:
            return [names.index(c) for c in self.cursor_cols]
        except ValueError:
            missing = next(c for c in self.cursor_cols if c not in names)
            raise ViewError(f"view {self.view_name}: cursor column {missing} is not among the columns read") from None

    async def _poll_groups(self, sink: Sink) -> bool:
        assert self._store is not None
        buf: list[dict[str, Any]] = []
        position: list[Any] = []
        gkey: tuple[Any, ...] | None = None
        after = self._cursor
        while True:
            names, rows = await self._page(after)
            at = self._cursor_at(names) if rows else []
            by = [names.index(c) if c in names else None for c in self.group_by]
            for row in rows:
                g = tuple(None if k is None else row[k] for k in by)
                if buf and g != gkey:
                    if not await self._deliver_group(sink, buf, position):
                        return False
                    buf = []
                    if self._stop.is_set():
                        return True
                buf.append(self.plan.message(names, row))
                position = [row[k] for k in at]
                gkey = g
            if len(rows) < self.batch:  # the view is read to its end: the last group is whole
                return await self._deliver_group(sink, buf, position) if buf else True
            after = position

    async def _deliver_group(self, sink: Sink, rows: list[dict[str, Any]], position: list[Any]) -> bool:
        """`position`: the cursor of the group's last row."""
        assert self._store is not None
        msg = InboundMessage(
            interface=self.interface,
            body=rows,  # type: ignore[arg-type]
            meta={"transport": "dbview", "view": self.view_name, "rows": len(rows)},
        )
        try:
            reply = await sink(msg)
        except Exception as exc:
            log.warning("poll %s: sink failed (%s); the group stays unacknowledged", self.name, type(exc).__name__)
            return False
        if reply.status >= 500:
            return False
        await self._advance(position)
        return True

    async def _deliver_many(self, many: ManySink, names: tuple[str, ...], rows: Sequence[Sequence[Any]],
                            positions: list[list[Any]]) -> list[bool]:
        """A window to a sink that takes many at once; acknowledged as `_deliver` says, row by row."""
        msgs = [InboundMessage(interface=self.interface, body=self.plan.message(names, row),
                               meta={"transport": "dbview", "view": self.view_name,
                                     "cursor": dict(zip(self.cursor_cols, p, strict=True))})
                for row, p in zip(rows, positions, strict=True)]
        try:
            replies = await many(msgs)
        except Exception as exc:  # the runtime failed: keep the rows for the next poll
            log.warning("poll %s: sink failed (%s); %d rows stay unacknowledged", self.name, type(exc).__name__, len(msgs))
            return [False] * len(msgs)
        return [self._acked(reply) for reply in replies]

    def _acked(self, reply: Reply | Exception) -> bool:
        """Acknowledged = the sink returned a Reply below 500 (a row the runtime rejects as invalid is
        journalled as rejected and must not block the view); an exception or a 5xx is not."""
        if isinstance(reply, Exception):  # the runtime failed: keep the row for the next poll
            log.warning("poll %s: sink failed (%s); the row stays unacknowledged", self.name, type(reply).__name__)
            return False
        if reply.status >= 500:
            log.warning("poll %s: sink answered %d; the row stays unacknowledged", self.name, reply.status)
            return False
        return True

    async def _deliver(self, sink: Sink, names: tuple[str, ...], row: Sequence[Any], position: list[Any]) -> bool:
        """One row to the sink; acknowledged as `_acked` says."""
        msg = InboundMessage(
            interface=self.interface,
            body=self.plan.message(names, row),
            meta={"transport": "dbview", "view": self.view_name, "cursor": dict(zip(self.cursor_cols, position, strict=True))},
        )
        try:
            reply: Reply | Exception = await sink(msg)
        except Exception as exc:
            reply = exc
        return self._acked(reply)

"""The journal's one SQLite connection, and the group-commit writer in front of it.

Every unit of work is a plain function of the `sqlite3.Connection`, run whole on aiosqlite's
connection thread. Why not aiosqlite's per-statement API: each statement is a thread hop
(~100 us measured on this 2-core box) and statements of concurrent coroutines would interleave
inside each other's transactions. One function per transaction makes it atomic on the thread and
costs one hop. This needs `Connection._execute`, which aiosqlite has kept since 0.1; `open_db`
checks for it so an upgrade that drops it fails loudly at open, not mid-flight.

Group commit: writes queue up while the thread is busy committing the previous batch, then run as
one transaction with a single commit: one fsync for many messages under synchronous=FULL. One
failing write does not undo the others (see `run_batch`), which is why an op must have no effect
outside its connection: it may run twice.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite

from engine.journal.model import JournalError

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

SYNCHRONOUS = ("FULL", "NORMAL")


class Db:
    """Runs functions of the raw connection on aiosqlite's thread."""

    def __init__(self, conn: aiosqlite.Connection, *, synchronous: str = "FULL", lock_path: str | None = None) -> None:
        self._conn = conn
        self.synchronous = synchronous
        """The configured level: what a durable batch commits with."""
        self.current = synchronous
        self._lock_fd: int | None = None
        if lock_path is not None:
            self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def writing(self, conn: sqlite3.Connection, ops: list[Op], durable: bool) -> list[tuple[bool, Any]]:
        """Run a write batch (on the db thread). Writers of every process of a bridge (engine/runtime/procs.py)
        take turns through an flock on a file beside the journal: the waiter wakes the moment the lock is free,
        where SQLite's own busy handler would sleep 1, 2, 5, 10... ms between tries. A batch nobody needs
        durable against power loss (leases: a lost one only makes a message due again) commits with
        synchronous=NORMAL: in WAL mode that survives a killed process, and the next FULL commit syncs it too."""
        level = self.synchronous if durable else "NORMAL"
        if level != self.current:
            conn.execute(f"PRAGMA synchronous={level}")
            self.current = level
        return self.exclusive(lambda: run_batch(conn, ops))

    def exclusive(self, fn: Callable[[], T]) -> T:
        """`fn()` (on the db thread) while no other process of the bridge writes to the journal."""
        fd = self._lock_fd
        if fd is None:
            return fn()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return fn()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if not conn._running:
            raise JournalError("journal is closed")
        return await conn._execute(lambda: fn(conn._conn))

    async def close(self) -> None:
        await self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


async def open_db(path: str, *, synchronous: str = "FULL") -> Db:
    """Open in WAL mode with autocommit off-switch (we BEGIN/COMMIT ourselves)."""
    if synchronous not in SYNCHRONOUS:
        raise JournalError(f"synchronous must be one of {SYNCHRONOUS}, not {synchronous!r}")
    if not hasattr(aiosqlite.Connection, "_execute"):
        raise JournalError("this aiosqlite has no Connection._execute: pin aiosqlite<0.23 or port engine/journal/db.py")
    conn = await aiosqlite.connect(path, isolation_level=None)
    db = Db(conn, synchronous=synchronous, lock_path=None if path == ":memory:" else f"{path}-writer.lock")

    def setup(c: sqlite3.Connection) -> None:
        mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal" and path != ":memory:":
            raise JournalError(f"journal {path}: cannot switch to WAL (got {mode})")
        c.execute(f"PRAGMA synchronous={synchronous}")
        c.execute("PRAGMA busy_timeout=5000")
        c.execute("PRAGMA temp_store=MEMORY")
        c.execute("PRAGMA cache_size=-32768")

    try:
        await db.call(setup)
    except BaseException:
        await conn.close()
        raise
    return db


def run_batch(conn: sqlite3.Connection, ops: list[Op]) -> list[tuple[bool, Any]]:
    """One transaction, one commit. Returns (ok, result|exception) per op.

    The ops run straight through; only when one raises is the transaction rolled back and the batch
    run again with each op in its own savepoint, so that one failing write does not undo the others.
    Savepoints cost two statements per op, and ops rarely fail. Running an op again is safe because
    an op is a function of the connection alone (its effects are undone with the transaction)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        try:
            out: list[tuple[bool, Any]] = [(True, op(conn)) for op in ops]
        except Exception as exc:
            conn.execute("ROLLBACK")
            if len(ops) == 1:  # nothing else to keep
                return [(False, exc)]
            conn.execute("BEGIN IMMEDIATE")
            out = _isolated(conn, ops)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return out


def _isolated(conn: sqlite3.Connection, ops: list[Op]) -> list[tuple[bool, Any]]:
    out: list[tuple[bool, Any]] = []
    for op in ops:
        conn.execute("SAVEPOINT op")
        try:
            result = op(conn)
        except Exception as exc:  # handed to that op's caller
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            out.append((False, exc))
        else:
            conn.execute("RELEASE op")
            out.append((True, result))
    return out


class _Many:
    """The outcomes of one `submit_many`, filled in as their batches commit."""

    __slots__ = ("fut", "left", "out")

    def __init__(self, fut: asyncio.Future[None], n: int) -> None:
        self.fut = fut
        self.left = n
        self.out: list[tuple[bool, Any]] = [(False, None)] * n

    def put(self, i: int, outcome: tuple[bool, Any]) -> None:
        self.out[i] = outcome
        self.left -= 1
        if not self.left and not self.fut.done():
            self.fut.set_result(None)


class Writer:
    """Queues write ops and commits them in batches; `submit` returns once its batch is durable."""

    def __init__(self, db: Db, *, group: bool = True, max_batch: int = 512) -> None:
        self._db = db
        self._group = group
        self._max_batch = max_batch if group else 1
        self._pending: deque[tuple[Op, asyncio.Future[Any] | tuple[_Many, int], bool]] = deque()
        """(op, where its outcome goes: its caller's future, or a slot of a `submit_many`, durable)"""
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.ops = 0

    async def submit(self, op: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run `op` in the next batch; returns once that batch is committed (`durable`: synced to disk
        under synchronous=FULL; else it survives a killed process, not a power loss)."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut, durable))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def submit_many(self, ops: list[Op], *, durable: bool = True) -> list[tuple[bool, Any]]:
        """Run `ops` in the next batch(es), each on its own (one failing does not undo the others);
        returns (ok, result|exception) per op once all are committed. One future for them all: a
        caller with many records (a poller's window) is resumed once, not once per record."""
        if not ops:
            return []
        many = _Many(asyncio.get_running_loop().create_future(), len(ops))
        for i, op in enumerate(ops):
            self._pending.append((op, (many, i), durable))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        await many.fut
        return many.out

    async def _drain(self) -> None:
        try:
            while self._pending:
                n = min(self._max_batch, len(self._pending))
                batch = [self._pending.popleft() for _ in range(n)]
                ops = [op for op, _, _ in batch]
                durable = any(d for _, _, d in batch)
                try:
                    outcomes = await self._db.call(lambda c, ops=ops, d=durable: self._db.writing(c, ops, d))
                except BaseException as exc:  # commit failed: nothing in this batch is durable
                    err = exc if isinstance(exc, Exception) else JournalError(repr(exc))
                    for _, fut, _ in batch:
                        if isinstance(fut, tuple):
                            fut[0].put(fut[1], (False, err))
                        elif not fut.done():
                            fut.set_exception(err)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.batches += 1
                self.ops += n
                for (_, fut, _), (ok, value) in zip(batch, outcomes, strict=True):
                    if isinstance(fut, tuple):
                        fut[0].put(fut[1], (ok, value))
                        continue
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
        finally:
            self._task = None

    async def flush(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)

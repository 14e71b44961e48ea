"""The durable message journal: every message's state, payloads and attempts, in one SQLite file.

Guarantees: `receive` returns only after the message is committed (acknowledge the source after it,
never before); a worker that dies holding messages loses them only for its lease (`claim_due`
hands them out again when it expires: that is crash recovery, nothing to run at start-up), marked
in doubt (`Message.in_doubt`): a delivery may have reached the platform unrecorded, so the runtime asks
the platform first where the spec says how (engine/runtime/reconcile.py), else sends it again
(at-least-once). Natural keys make re-sent source records idempotent (see `KeyPolicy`).

Durability levels: WAL with synchronous=NORMAL survives a killed process (SIGKILL) but can lose the
last commits on power loss or OS crash, i.e. after the source was acknowledged; FULL fsyncs the WAL
on every commit and survives both. Measured by bench/journal.py on this 2-core box (fsync ~0.2 ms):
one producer at a time FULL 0.9-2.5k receives/s against NORMAL 4-9k/s; 64 concurrent producers with
group commit ~21-23k/s under both, at 10k and at 1M rows. Under load the fsync is amortised over the
batch, so FULL is the default; NORMAL is a setting for disposable environments.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from engine.journal import ops
from engine.journal.db import Db, Writer, open_db
from engine.journal.model import (
    Attempt,
    Incoming,
    KeyPolicy,
    Message,
    Payload,
    Receipt,
    State,
    Summary,
    encode_payload,
)
from engine.journal.schema import migrate

log = logging.getLogger("specbridge.journal")

Clock = Callable[[], float]


class Journal:
    """Async facade over one SQLite file. Open with `await Journal.open(path)`; one per process."""

    def __init__(
        self,
        db: Db,
        writer: Writer,
        *,
        clock: Clock,
        lease_s: float,
        key_policy: KeyPolicy,
        max_body: int,
        last_created: float,
    ) -> None:
        self._db = db
        self._writer = writer
        self._clock = clock
        self.lease_s = lease_s
        self.key_policy = key_policy
        self.max_body = max_body
        self._last_created = last_created
        self._owner = secrets.token_hex(4)
        self._leases = 0
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        synchronous: str = "FULL",
        group_commit: bool = True,
        max_batch: int = 512,
        lease_s: float = 60.0,
        key_policy: KeyPolicy = KeyPolicy.LATEST,
        max_body: int = 8192,
        clock: Clock = time.time,
    ) -> Journal:
        """Open (creating and migrating as needed). `max_body`: characters kept of each response body."""
        db = await open_db(path, synchronous=synchronous)
        try:
            await db.call(migrate)
            last = await db.call(lambda c: c.execute("SELECT coalesce(max(created_at), 0) FROM messages").fetchone()[0])
        except BaseException:
            await db.close()
            raise
        writer = Writer(db, group=group_commit, max_batch=max_batch)
        return cls(db, writer, clock=clock, lease_s=lease_s, key_policy=key_policy, max_body=max_body, last_created=last)

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Wait for queued writes, then close (SQLite checkpoints the WAL on last close)."""
        if self._closed:
            return
        self._closed = True
        await self._writer.flush()
        try:
            # Under the writers' lock: with delivery processes another process may be writing, and
            # optimize's ANALYZE would then find its snapshot stale and fail at once (busy).
            await self._db.call(lambda c: self._db.exclusive(lambda: c.execute("PRAGMA optimize")))
        except sqlite3.OperationalError as exc:  # statistics only: never a reason to fail a close
            log.debug("journal: PRAGMA optimize skipped at close (%s)", exc)
        await self._db.close()

    def _created_at(self) -> float:
        """Creation time, never earlier than the last one: keeps created_at monotonic with id,
        which lets time-bounded searches become id ranges."""
        now = max(self._clock(), self._last_created)
        self._last_created = now
        return now

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def _lease(self, start: float, lease_s: float | None) -> tuple[str, float]:
        """A new lease of this journal's owner and when it runs out (`lease_s`, default the journal's)."""
        self._leases += 1
        return f"{self._owner}.{self._leases}", start + (self.lease_s if lease_s is None else lease_s)

    # -- receiving -------------------------------------------------------------------------------

    async def receive(
        self,
        interface: str,
        target: str,
        source: Payload,
        *,
        key: str | None = None,
        route: str | None = None,
        translated: Payload | None = None,
        policy: KeyPolicy | None = None,
    ) -> Receipt:
        """Journal one record for one target; durable when this returns. A duplicate returns the
        existing id with `duplicate=True`. Pass `translated` when already translated (saves a commit)."""
        rec = Incoming(interface, target, source, key, route, translated, policy)
        created = self._created_at()
        return await self._writer.submit(lambda c: ops.receive(c, rec, created, self.key_policy))

    async def receive_held(self, record: Incoming, *, lease_s: float | None = None) -> tuple[Receipt, str | None]:
        """Journal one record and hold it (durable when this returns): (receipt, lease), the lease
        None when it cannot be held (a duplicate already SENT or in flight elsewhere). A message
        whose holder dies is due again when the lease runs out, like a claimed one."""
        created = self._created_at()
        lease, until = self._lease(created, lease_s)
        receipt, held = await self._writer.submit(lambda c: ops.receive_held(c, record, created, self.key_policy, until, lease))
        return receipt, lease if held else None

    async def receive_claimed(self, record: Incoming, *, lease_s: float | None = None) -> tuple[Receipt, Message | None]:
        """Journal one record and claim it in the same transaction (durable when this returns): the
        receipt, and the message as `claim_due` would have handed it out, leased to the caller; None
        for a duplicate, or a new version whose older one is still to go (left due: `claim_due`
        sends versions in order). Saves a sender the claim query, and its commit, for each new
        message; one the caller never sends is due again when the lease runs out (or `release`)."""
        created = self._created_at()
        lease, until = self._lease(created, lease_s)
        return await self._writer.submit(lambda c: ops.receive_claimed(c, record, created, self.key_policy, until, lease))

    async def receive_batch(self, records: Sequence[tuple[Incoming, bool]], *, lease_s: float | None = None) -> list[tuple[bool, Any]]:
        """Journal many records, each in its own right (durable when this returns): per record (ok,
        outcome), the outcome that of `receive_claimed` for one to claim (True), of `receive` for the
        others, or the exception that kept it out. A poller's window in one call."""
        work: list[Callable[[sqlite3.Connection], Any]] = []
        for rec, claim in records:
            created = self._created_at()
            if claim:
                lease, until = self._lease(created, lease_s)
                work.append(lambda c, r=rec, t=created, u=until, le=lease: ops.receive_claimed(c, r, t, self.key_policy, u, le))
            else:
                work.append(lambda c, r=rec, t=created: ops.receive(c, r, t, self.key_policy))
        return await self._writer.submit_many(work)

    async def release(self, held: Sequence[tuple[int, str]], now: float | None = None) -> int:
        """Give up these (message id, lease) holds unsent: due again now. Returns how many were still held."""
        t = self._now(now)
        items = list(held)
        return await self._writer.submit(lambda c: ops.release(c, items, t)) if items else 0

    async def receive_many(self, records: Sequence[Incoming]) -> list[Receipt]:
        """Journal a batch (a poller's page) in one transaction; all or nothing."""
        stamped = [(r, self._created_at()) for r in records]
        return await self._writer.submit(lambda c: [ops.receive(c, r, t, self.key_policy) for r, t in stamped])

    async def mark_translated(self, message_id: int, translated: Payload, *, lease: str | None = None, now: float | None = None) -> None:
        data = encode_payload(translated)
        t = self._now(now)
        await self._writer.submit(lambda c: ops.mark_translated(c, message_id, data, t, lease))

    # -- delivering ------------------------------------------------------------------------------

    async def claim_due(self, target: str, limit: int = 50, now: float | None = None, *, lease_s: float | None = None,
                        skip_routes: Collection[str] = ()) -> list[Message]:
        """Lease up to `limit` due messages of a target, oldest due first. The lease (the returned
        messages' `lease`) expires after lease_s; unfinished messages are then due again, in doubt.
        skip_routes: paused routes, whose messages wait in the journal."""
        t = self._now(now)
        lease, until = self._lease(t, lease_s)
        skip = tuple(skip_routes)
        return await self._writer.submit(lambda c: ops.claim(c, target, limit, t, until, lease, skip), durable=False)

    async def record_attempt(self, message_id: int, attempt: Attempt, *, lease: str | None = None, now: float | None = None) -> int:
        """Store one attempt (e.g. a reauth before the resend). Returns its number."""
        t = self._now(now)
        return await self._writer.submit(lambda c: ops.record_attempt(c, message_id, attempt, t, self.max_body, lease))

    async def mark_sent(
        self,
        message_id: int,
        *,
        attempt: Attempt | None = None,
        lease: str | None = None,
        now: float | None = None,
    ) -> None:
        await self._finish(message_id, State.SENT, attempt=attempt, lease=lease, now=now)

    async def schedule_retry(
        self,
        message_id: int,
        next_attempt_at: float,
        reason: str,
        *,
        attempt: Attempt | None = None,
        lease: str | None = None,
        now: float | None = None,
        in_doubt: bool = False,
    ) -> State:
        """ERROR, due again at next_attempt_at. Returns DEAD instead when the message was superseded.
        in_doubt: the attempt did not settle whether an earlier delivery arrived (a reconciliation
        query that failed): the message stays in doubt. Otherwise the outcome clears the doubt."""
        return await self._finish(
            message_id,
            State.ERROR,
            attempt=attempt,
            lease=lease,
            now=now,
            reason=reason,
            next_attempt_at=next_attempt_at,
            in_doubt=in_doubt,
        )

    async def mark_dead(
        self,
        message_id: int,
        reason: str,
        *,
        attempt: Attempt | None = None,
        lease: str | None = None,
        now: float | None = None,
        in_doubt: bool = False,
    ) -> None:
        """DEAD (replayable). in_doubt: as for `schedule_retry` (a replay then asks the platform again)."""
        await self._finish(message_id, State.DEAD, attempt=attempt, lease=lease, now=now, reason=reason, in_doubt=in_doubt)

    async def _finish(
        self,
        message_id: int,
        state: State,
        *,
        attempt: Attempt | None,
        lease: str | None,
        now: float | None,
        reason: str | None = None,
        next_attempt_at: float | None = None,
        in_doubt: bool = False,
    ) -> State:
        t = self._now(now)
        return await self._writer.submit(
            lambda c: ops.finish(
                c,
                message_id,
                state,
                now=t,
                lease=lease,
                attempt=attempt,
                max_body=self.max_body,
                reason=reason,
                next_attempt_at=next_attempt_at,
                in_doubt=in_doubt,
            )
        )

    # -- operating -------------------------------------------------------------------------------

    async def replay(self, message_id: int, *, retranslate: bool = True, force: bool = False, now: float | None = None) -> State:
        """Make a DEAD, ERROR or SENT message due now, with a fresh attempt budget and age.

        retranslate: back to RECEIVED so the (fixed) translator runs again. A superseded version is
        refused unless force, since it would overwrite newer data on the platform."""
        t = self._now(now)
        return await self._writer.submit(lambda c: ops.replay(c, message_id, t, retranslate=retranslate, force=force))

    async def replay_dead(self, interface: str, *, target: str | None = None, retranslate: bool = True, now: float | None = None) -> int:
        """Replay every DEAD (not superseded) message of an interface. Returns how many."""
        t = self._now(now)
        return await self._writer.submit(lambda c: ops.replay_dead(c, interface, target, t, retranslate))

    async def get(self, message_id: int) -> Message | None:
        """The message with its payloads and every attempt, or None."""
        return await self._db.call(lambda c: ops.get(c, message_id))

    async def search(
        self,
        *,
        state: State | str | None = None,
        interface: str | None = None,
        target: str | None = None,
        key: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int | None = None,
        limit: int = 50,
        newest_first: bool = True,
    ) -> list[Summary]:
        """One page of summaries. Next page: pass the last hit's id as after_id (keyset pagination).
        since is inclusive, until exclusive (epoch seconds of creation)."""
        st = State(state) if state is not None else None
        return await self._db.call(
            lambda c: ops.search(
                c,
                state=st,
                interface=interface,
                target=target,
                key=key,
                since=since,
                until=until,
                after_id=after_id,
                limit=limit,
                newest_first=newest_first,
            )
        )

    async def next_due(self, target: str, *, skip_routes: Collection[str] = ()) -> float | None:
        """When the target's next message falls due (a retry, or a lease running out): lets a
        sender sleep exactly until then instead of polling. One index probe (ix_messages_due)."""
        if skip_routes:
            skip = tuple(skip_routes)
            sql = ops.not_paused("SELECT m.next_attempt_at FROM messages AS m INDEXED BY ix_messages_due"
                                 " WHERE m.target = ? AND m.next_attempt_at IS NOT NULL ORDER BY m.next_attempt_at LIMIT 1", skip)
            row = await self._db.call(lambda c: c.execute(sql, (target, *skip)).fetchone())
            return None if row is None else float(row[0])
        row = await self._db.call(
            lambda c: c.execute("SELECT MIN(next_attempt_at) FROM messages WHERE target = ? AND next_attempt_at IS NOT NULL",
                                (target,)).fetchone()
        )
        return None if row is None or row[0] is None else float(row[0])

    async def stats(self) -> dict[str, dict[str, int]]:
        """Counts: {interface: {state: n}}."""
        return await self._db.call(ops.stats)

    async def prune(self, older_than: float, states: Iterable[State | str] = (State.SENT, State.DEAD), *, chunk: int = 5000,
                    dry_run: bool = False, progress: Callable[[int], None] | None = None) -> int:
        """Delete messages created before older_than in the given states, with their attempts.

        Works in chunks so live traffic is not blocked behind one huge transaction. Pruned keys are
        forgotten: the idempotency window is the retention. dry_run: only count what would go;
        progress: called with each chunk's count (`specbridge prune` draws a bar with it)."""
        wanted = [str(State(s)) for s in states]
        upto = await self._db.call(lambda c: ops.prune_bound(c, older_than))
        if dry_run:
            return await self._db.call(lambda c: ops.prune_count(c, upto, wanted))
        removed, after = 0, 0
        while after < upto:
            n, after = await self._writer.submit(lambda c, a=after: ops.prune_chunk(c, a, upto, wanted, chunk))
            removed += n
            if progress is not None and n:
                progress(n)
        return removed

    # -- small key/value store (token counters, watermarks) ---------------------------------------

    async def kv_get(self, key: str) -> str | None:
        row = await self._db.call(lambda c: c.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone())
        return None if row is None else str(row[0])

    async def kv_set(self, key: str, value: str) -> None:
        t = self._clock()

        def upsert(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, t),
            )

        await self._writer.submit(upsert)

    @property
    def commit_stats(self) -> tuple[int, int]:
        """(batches committed, ops committed) by the group-commit writer since open."""
        return self._writer.batches, self._writer.ops

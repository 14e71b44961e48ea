"""The journal's transactions as plain functions of a sqlite3 connection (run on the db thread).

Kept free of asyncio so each is one atomic unit the group-commit writer can batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from engine.journal.model import (
    Attempt,
    AttemptRecord,
    Incoming,
    JournalError,
    KeyPolicy,
    LeaseLost,
    Message,
    Receipt,
    State,
    Summary,
    UnknownMessage,
    encode_payload,
    payload_hash,
)

COLUMNS = (
    "m.id, m.interface, m.target, m.route, m.state, m.idem_key, m.version, m.payload_hash, p.source, p.translated,"
    " m.created_at, m.updated_at, m.cycle_at, m.next_attempt_at, m.lease, m.attempts, m.last_error, m.superseded_by, m.in_doubt"
)
FROM_MESSAGE = "messages AS m LEFT JOIN payloads AS p ON p.id = m.id"
SUMMARY_COLUMNS = "id, interface, target, state, idem_key, version, created_at, updated_at, next_attempt_at, attempts, last_error, in_doubt"
ATTEMPT_COLUMNS = "id, message_id, n, started_at, duration_ms, request, status, code, body, outcome, error"

_INSERT = (
    "INSERT INTO messages (interface, target, route, state, idem_key, version, payload_hash,"
    " created_at, updated_at, cycle_at, next_attempt_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_INSERT_HELD = _INSERT.replace("next_attempt_at)", "next_attempt_at, lease)").replace("?)", "?, ?)")

# A key's first version, unless the key is journalled already (then nothing happens, and `_receive`
# looks at what is there): most records are new, and this spares them the lookup statement.
_FIRST = " ON CONFLICT (idem_key, target, interface, version) WHERE idem_key IS NOT NULL DO NOTHING"
_INSERT_FIRST = _INSERT + _FIRST
_INSERT_HELD_FIRST = _INSERT_HELD + _FIRST

# An older version of the key still to go (pending, or in flight): a newer one waits for it.
_OLDER_PENDING = """
SELECT 1 FROM messages INDEXED BY ux_messages_key
WHERE idem_key = ? AND target = ? AND interface = ? AND version < ? AND next_attempt_at IS NOT NULL LIMIT 1
"""

_INSERT_ATTEMPT = f"INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_NEXT_ATTEMPT = _INSERT_ATTEMPT.replace(
    "NULL, ?, ?,", "NULL, ?, (SELECT coalesce(max(n), 0) + 1 FROM attempts WHERE message_id = ?),", 1)

# A delivery's outcome, for the holder only (or anyone, when no lease is given); settles a doubt.
_SENT = ("UPDATE messages SET state = 'SENT', next_attempt_at = NULL, lease = NULL, last_error = ?, updated_at = ?,"
         " attempts = attempts + 1, in_doubt = 0 WHERE id = ?")
_SENT_HELD = _SENT + " AND lease = ?"

# Older versions of a key that are not SENT are superseded by a new one (policy latest). Pending ones
# nobody holds go DEAD now; one in flight finishes its attempt (then goes DEAD unless it was sent);
# DEAD ones only get the mark, so replay_dead never sends stale data over the new version.
_SUPERSEDE = """
UPDATE messages SET
    superseded_by = :new,
    updated_at = :now,
    last_error = CASE WHEN state = 'DEAD' THEN last_error ELSE :reason END,
    state = CASE WHEN lease IS NULL OR next_attempt_at <= :now THEN 'DEAD' ELSE state END,
    lease = CASE WHEN lease IS NULL OR next_attempt_at <= :now THEN NULL ELSE lease END,
    next_attempt_at = CASE WHEN lease IS NULL OR next_attempt_at <= :now THEN NULL ELSE next_attempt_at END
WHERE idem_key = :key AND target = :target AND interface = :interface AND version < :version
  AND state != 'SENT' AND superseded_by IS NULL
"""

# Due, not superseded, and no older version of the same key still pending: versions go out in order.
_CLAIM = """
SELECT m.id FROM messages AS m INDEXED BY ix_messages_due
WHERE m.target = ? AND m.next_attempt_at <= ? AND m.superseded_by IS NULL
  AND (m.version = 1 OR NOT EXISTS (
        SELECT 1 FROM messages AS o
        WHERE o.idem_key = m.idem_key AND o.target = m.target AND o.interface = m.interface
          AND o.version < m.version AND o.next_attempt_at IS NOT NULL))
ORDER BY m.next_attempt_at, m.id
LIMIT ?
"""


def to_message(row: Sequence[Any], history: list[AttemptRecord] | None = None) -> Message:
    return Message(*row[:4], State(row[4]), *row[5:18], bool(row[18]), history=history or [])


def receive(c: sqlite3.Connection, rec: Incoming, created_at: float, default_policy: KeyPolicy) -> Receipt:
    return _receive(c, rec, created_at, default_policy)


def _receive(c: sqlite3.Connection, rec: Incoming, created_at: float, default_policy: KeyPolicy,
             hold: tuple[float, str] | None = None, stored: list[Message] | None = None) -> Receipt:
    """`receive`; with `hold` (lease expiry, lease) a new message is inserted leased, and appended
    to `stored` as a Message (what `claim` would have read back)."""
    source = encode_payload(rec.source)
    translated = encode_payload(rec.translated)
    digest = payload_hash(source)
    state = State.TRANSLATED if translated is not None else State.RECEIVED
    version = 1
    t = created_at
    due, lease = hold if hold is not None else (t, None)

    def insert(first: bool) -> sqlite3.Cursor:
        values = (rec.interface, rec.target, rec.route, state, rec.key, version, digest, t, t, t)
        if lease is None:
            return c.execute(_INSERT_FIRST if first else _INSERT, (*values, t))
        return c.execute(_INSERT_HELD_FIRST if first else _INSERT_HELD, (*values, due, lease))

    cur = insert(first=rec.key is not None)
    if not cur.rowcount:  # the key is journalled already: a duplicate, or a new version of it
        row = c.execute(
            "SELECT id, version, payload_hash FROM messages"
            " WHERE idem_key = ? AND target = ? AND interface = ? ORDER BY version DESC LIMIT 1",
            (rec.key, rec.target, rec.interface),
        ).fetchone()
        policy = rec.policy or default_policy
        if row[2] == digest or policy is KeyPolicy.IGNORE:
            return Receipt(row[0], duplicate=True, version=row[1])
        version = row[1] + 1
        cur = insert(first=False)
    mid = int(cur.lastrowid or 0)
    c.execute("INSERT INTO payloads (id, source, translated) VALUES (?, ?, ?)", (mid, source, translated))
    if version > 1 and (rec.policy or default_policy) is KeyPolicy.LATEST:
        c.execute(
            _SUPERSEDE,
            {
                "new": mid,
                "now": created_at,
                "reason": f"superseded by #{mid}",
                "key": rec.key,
                "target": rec.target,
                "interface": rec.interface,
                "version": version,
            },
        )
    if lease is not None and version > 1 and c.execute(_OLDER_PENDING, (rec.key, rec.target, rec.interface, version)).fetchone():
        c.execute("UPDATE messages SET next_attempt_at = ?, lease = NULL WHERE id = ?", (t, mid))  # its turn comes by `claim`
    elif lease is not None and stored is not None:  # for its sender: the source only if it must translate (the journal has it)
        stored.append(Message(mid, rec.interface, rec.target, rec.route, state, rec.key, version, digest,
                              source if translated is None else None, translated, t, t, t, due, lease, 0, None, None, False))
    return Receipt(mid, duplicate=False, version=version)


def receive_claimed(c: sqlite3.Connection, rec: Incoming, created_at: float, default_policy: KeyPolicy,
                    until: float, lease: str) -> tuple[Receipt, Message | None]:
    """`receive`, and claim the new message in the same transaction, as `claim` would hand it out:
    the delivery hand-off (a record goes from its source to its target's sender with no claim query).
    Not claimed: a duplicate (it is the existing message's business), or a new version while an older
    one of its key is still to go (versions go out in order, which `claim` sees to)."""
    stored: list[Message] = []
    r = _receive(c, rec, created_at, default_policy, (until, lease), stored)
    return r, stored[0] if stored else None


def release(c: sqlite3.Connection, held: Sequence[tuple[int, str]], now: float) -> int:
    """Give up leases not acted on (hand-offs a stopping sender never started): due again now."""
    n = 0
    for mid, lease in held:
        n += c.execute("UPDATE messages SET next_attempt_at = ?, lease = NULL, updated_at = ? WHERE id = ? AND lease = ?",
                       (now, now, mid, lease)).rowcount
    return n


def receive_held(c: sqlite3.Connection, rec: Incoming, created_at: float, default_policy: KeyPolicy,
                 until: float, lease: str) -> tuple[Receipt, bool]:
    """`receive`, and lease the message to the caller in the same transaction, so no delivery loop
    can claim it first (a synchronous query is sent by the request that brought it). Not held: a
    duplicate that was SENT already, was superseded, or that another holder has in flight."""
    r = receive(c, rec, created_at, default_policy)
    cur = c.execute(
        "UPDATE messages SET next_attempt_at = ?, lease = ?, updated_at = ?, in_doubt = in_doubt | (lease IS NOT NULL)"
        " WHERE id = ? AND state != 'SENT' AND superseded_by IS NULL AND (lease IS NULL OR next_attempt_at <= ?)",
        (until, lease, created_at, r.id, created_at),
    )
    return r, cur.rowcount == 1


def _holder(c: sqlite3.Connection, mid: int, lease: str | None) -> tuple[str, int | None]:
    """(state, superseded_by) of a message, checking the caller still holds it when it says it does."""
    row = c.execute("SELECT state, lease, superseded_by FROM messages WHERE id = ?", (mid,)).fetchone()
    if row is None:
        raise UnknownMessage(f"message #{mid} not in journal")
    if lease is not None and row[1] != lease:
        raise LeaseLost(f"message #{mid}: lease {lease} lost")
    return row[0], row[2]


def _clip(body: str | bytes | None, limit: int) -> str | None:
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} chars truncated]"


def add_attempt(c: sqlite3.Connection, mid: int, a: Attempt, now: float, max_body: int) -> int:
    n = c.execute("SELECT coalesce(max(n), 0) + 1 FROM attempts WHERE message_id = ?", (mid,)).fetchone()[0]
    _insert_attempt(c, mid, n, a, now, max_body)
    c.execute("UPDATE messages SET attempts = attempts + 1, updated_at = ? WHERE id = ?", (now, mid))
    return int(n)


def _insert_attempt(c: sqlite3.Connection, mid: int, n: int | None, a: Attempt, now: float, max_body: int) -> None:
    """n None: the next number after the message's attempts so far."""
    c.execute(
        _INSERT_ATTEMPT if n is not None else _INSERT_NEXT_ATTEMPT,
        (
            mid,
            n if n is not None else mid,
            a.started_at if a.started_at is not None else now,
            a.duration_ms,
            _clip(a.request, 512),
            a.status,
            a.code,
            _clip(a.body, max_body),
            a.outcome,
            _clip(a.error, 1024),
        ),
    )


def record_attempt(c: sqlite3.Connection, mid: int, a: Attempt, now: float, max_body: int, lease: str | None) -> int:
    _holder(c, mid, lease)
    return add_attempt(c, mid, a, now, max_body)


def mark_translated(c: sqlite3.Connection, mid: int, translated: bytes | None, now: float, lease: str | None) -> None:
    state, _ = _holder(c, mid, lease)
    if state not in (State.RECEIVED, State.TRANSLATED, State.ERROR):
        raise JournalError(f"message #{mid} is {state}: replay it to translate again")
    c.execute("UPDATE messages SET state = 'TRANSLATED', updated_at = ? WHERE id = ?", (now, mid))
    c.execute("UPDATE payloads SET translated = ? WHERE id = ?", (translated, mid))


def finish(
    c: sqlite3.Connection,
    mid: int,
    state: State,
    *,
    now: float,
    lease: str | None,
    attempt: Attempt | None,
    max_body: int,
    reason: str | None = None,
    next_attempt_at: float | None = None,
    in_doubt: bool = False,
) -> State:
    """End an attempt: SENT, ERROR (retry at next_attempt_at) or DEAD. Releases the lease. An outcome
    settles a doubt; `in_doubt` keeps it (an attempt that could not tell whether a delivery arrived).

    Three statements; two for a delivery (the hot path): one UPDATE that checks the holder, sets the
    state and counts the attempt, and the attempt's INSERT numbering it itself."""
    if state is State.SENT and attempt is not None:
        cur = c.execute(_SENT if lease is None else _SENT_HELD, (reason, now, mid) if lease is None else (reason, now, mid, lease))
        if cur.rowcount:
            _insert_attempt(c, mid, None, attempt, now, max_body)
            return state
        # not there, or not ours: the full path below says which
    row = c.execute(
        "SELECT lease, superseded_by, (SELECT coalesce(max(n), 0) + 1 FROM attempts WHERE message_id = ?) FROM messages WHERE id = ?",
        (mid, mid),
    ).fetchone()
    if row is None:
        raise UnknownMessage(f"message #{mid} not in journal")
    if lease is not None and row[0] != lease:
        raise LeaseLost(f"message #{mid}: lease {lease} lost")
    superseded = row[1]
    if attempt is not None:
        _insert_attempt(c, mid, row[2], attempt, now, max_body)
    if state is State.ERROR and superseded is not None:
        state, reason, next_attempt_at = State.DEAD, f"superseded by #{superseded}", None
    if state is not State.ERROR:
        next_attempt_at = None
    c.execute(
        "UPDATE messages SET state = ?, next_attempt_at = ?, lease = NULL, last_error = ?, updated_at = ?, attempts = attempts + ?,"
        " in_doubt = ? WHERE id = ?",
        (state, next_attempt_at, reason, now, 1 if attempt is not None else 0, int(in_doubt and state is not State.SENT), mid),
    )
    return state


def not_paused(sql: str, skip_routes: Sequence[str]) -> str:
    """`sql` (a due-index walk) also skipping messages of paused routes: they stay journalled, undelivered."""
    if not skip_routes:
        return sql
    cond = f"AND (m.route IS NULL OR m.route NOT IN ({','.join('?' * len(skip_routes))}))\nORDER BY"
    return sql.replace("ORDER BY", cond, 1)


def claim(c: sqlite3.Connection, target: str, limit: int, now: float, until: float, lease: str,
          skip_routes: Sequence[str] = ()) -> list[Message]:
    c.execute(
        "UPDATE messages SET state = 'DEAD', next_attempt_at = NULL, lease = NULL, updated_at = ?"
        " WHERE target = ? AND superseded_by IS NOT NULL AND next_attempt_at <= ?",
        (now, target, now),
    )
    ids = [r[0] for r in c.execute(not_paused(_CLAIM, skip_routes), (target, now, *skip_routes, limit))]
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    # A row still leased when claimed again: its holder never recorded an outcome (killed, or stopped
    # mid-send), so a delivery may have reached the platform. Released leases (retries, marks,
    # `release`) are NULL: those are not in doubt.
    c.execute(
        f"UPDATE messages SET next_attempt_at = ?, lease = ?, updated_at = ?, in_doubt = in_doubt | (lease IS NOT NULL)"
        f" WHERE id IN ({marks})",
        (until, lease, now, *ids),
    )
    rows = {r[0]: r for r in c.execute(f"SELECT {COLUMNS} FROM {FROM_MESSAGE} WHERE m.id IN ({marks})", ids)}
    return [to_message(rows[i]) for i in ids]


def replay(c: sqlite3.Connection, mid: int, now: float, *, retranslate: bool, force: bool) -> State:
    row = c.execute(
        f"SELECT m.state, m.lease, m.next_attempt_at, m.superseded_by, p.translated IS NOT NULL FROM {FROM_MESSAGE} WHERE m.id = ?",
        (mid,),
    ).fetchone()
    if row is None:
        raise UnknownMessage(f"message #{mid} not in journal")
    _, lease, nxt, superseded, has_translation = row
    if lease is not None and nxt is not None and nxt > now:
        raise JournalError(f"message #{mid} is in flight (leased until {nxt:.0f}); replay it after")
    if superseded is not None and not force:
        raise JournalError(f"message #{mid} was superseded by #{superseded}: replay that one (or force)")
    new = State.TRANSLATED if has_translation and not retranslate else State.RECEIVED
    c.execute(
        "UPDATE messages SET state = ?, next_attempt_at = ?, lease = NULL, attempts = 0, cycle_at = ?,"
        " last_error = NULL, superseded_by = NULL, updated_at = ? WHERE id = ?",
        (new, now, now, now, mid),
    )
    return new


def replay_dead(c: sqlite3.Connection, interface: str, target: str | None, now: float, retranslate: bool) -> int:
    translated = "(SELECT p.translated IS NOT NULL FROM payloads AS p WHERE p.id = messages.id)"
    new_state = "'RECEIVED'" if retranslate else f"CASE WHEN {translated} THEN 'TRANSLATED' ELSE 'RECEIVED' END"
    sql = (
        f"UPDATE messages SET state = {new_state}, next_attempt_at = ?, lease = NULL, attempts = 0,"
        " cycle_at = ?, last_error = NULL, updated_at = ?"
        " WHERE interface = ? AND state = 'DEAD' AND superseded_by IS NULL"
    )
    params: list[object] = [now, now, now, interface]
    if target is not None:
        sql += " AND target = ?"
        params.append(target)
    return c.execute(sql, params).rowcount


def get(c: sqlite3.Connection, mid: int) -> Message | None:
    row = c.execute(f"SELECT {COLUMNS} FROM {FROM_MESSAGE} WHERE m.id = ?", (mid,)).fetchone()
    if row is None:
        return None
    history = [AttemptRecord(*r) for r in c.execute(f"SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE message_id = ? ORDER BY n", (mid,))]
    return to_message(row, history)


def _id_bound(c: sqlite3.Connection, since: float | None, until: float | None) -> tuple[int, int] | None:
    """Time bounds as an id range (created_at is monotonic with id). None when the range is empty."""
    lo, hi = 0, 2**63 - 1
    if since is not None:
        row = c.execute("SELECT id FROM messages WHERE created_at >= ? ORDER BY created_at, id LIMIT 1", (since,)).fetchone()
        if row is None:
            return None
        lo = row[0]
    if until is not None:
        row = c.execute("SELECT id FROM messages WHERE created_at < ? ORDER BY created_at DESC, id DESC LIMIT 1", (until,)).fetchone()
        if row is None:
            return None
        hi = row[0]
    return (lo, hi) if lo <= hi else None


def search(
    c: sqlite3.Connection,
    *,
    state: State | None,
    interface: str | None,
    target: str | None,
    key: str | None,
    since: float | None,
    until: float | None,
    after_id: int | None,
    limit: int,
    newest_first: bool,
) -> list[Summary]:
    """Keyset page in id order. The index is chosen explicitly so the plan never depends on ANALYZE."""
    bounds = _id_bound(c, since, until)
    if bounds is None:
        return []
    lo, hi = bounds
    if after_id is not None:  # folded into the one id range the index seek uses
        lo, hi = (lo, min(hi, after_id - 1)) if newest_first else (max(lo, after_id + 1), hi)
    where = ["id BETWEEN ? AND ?"]
    params: list[object] = [lo, hi]
    for column, value in (("idem_key", key), ("interface", interface), ("state", state), ("target", target)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(str(value))
    if key is not None:
        index = "INDEXED BY ux_messages_key"
    elif interface is not None and state is not None:
        index = "INDEXED BY ix_messages_interface_state"
    elif interface is not None:
        index = "INDEXED BY ix_messages_interface"
    elif state is not None:
        index = "INDEXED BY ix_messages_state"
    else:
        index = ""
    order = "DESC" if newest_first else "ASC"
    sql = f"SELECT {SUMMARY_COLUMNS} FROM messages {index} WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?"
    params.append(limit)
    return [Summary(r[0], r[1], r[2], State(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], r[10], bool(r[11])) for r in c.execute(sql, params)]


def stats(c: sqlite3.Connection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for interface, state, n in c.execute(
        "SELECT interface, state, count(*) FROM messages INDEXED BY ix_messages_interface_state GROUP BY interface, state"
    ):
        out.setdefault(interface, {})[state] = n
    return out


def prune_chunk(c: sqlite3.Connection, after: int, upto: int, states: Iterable[str], chunk: int) -> tuple[int, int]:
    """Delete up to `chunk` messages in (after, upto] in the given states. Returns (deleted, last id seen)."""
    states = list(states)
    marks = ",".join("?" * len(states))
    ids = [
        r[0]
        for r in c.execute(
            f"SELECT id FROM messages WHERE id > ? AND id <= ? AND state IN ({marks}) ORDER BY id LIMIT ?",
            (after, upto, *states, chunk),
        )
    ]
    if not ids:
        return 0, upto
    id_marks = ",".join("?" * len(ids))
    c.execute(f"DELETE FROM attempts WHERE message_id IN ({id_marks})", ids)
    c.execute(f"DELETE FROM payloads WHERE id IN ({id_marks})", ids)
    c.execute(f"DELETE FROM messages WHERE id IN ({id_marks})", ids)
    return len(ids), ids[-1] if len(ids) == chunk else upto


def prune_bound(c: sqlite3.Connection, older_than: float) -> int:
    row = c.execute("SELECT id FROM messages WHERE created_at < ? ORDER BY created_at DESC, id DESC LIMIT 1", (older_than,)).fetchone()
    return int(row[0]) if row else 0


def prune_count(c: sqlite3.Connection, upto: int, states: Sequence[str]) -> int:
    """How many messages up to id `upto` are in these states (what a prune would delete)."""
    marks = ",".join("?" * len(states))
    sql = f"SELECT count(*) FROM messages INDEXED BY ix_messages_state WHERE state IN ({marks}) AND id <= ?"
    return int(c.execute(sql, (*states, upto)).fetchone()[0])

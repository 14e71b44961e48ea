"""In doubt: a message whose delivery may have reached the platform with no outcome recorded (its lease
ran out while held) is handed out again marked so; leases given up on purpose are not. Real SQLite files,
a set clock."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from engine.journal import Attempt, Incoming, Journal, Message, State
from engine.journal.schema import MIGRATIONS, SCHEMA_VERSION
from tests.journal.support import IFACE, T0, TARGET, Clock

LEASE = 30.0


@pytest_asyncio.fixture
async def journal(tmp_path: Path, clock: Clock) -> AsyncIterator[Journal]:
    j = await Journal.open(str(tmp_path / "journal.db"), clock=clock, lease_s=LEASE)
    yield j
    await j.close()


async def claim_one(j: Journal, at: float) -> Message:
    got = await j.claim_due(TARGET, now=at)
    assert len(got) == 1, got
    return got[0]


async def test_a_lease_that_runs_out_hands_the_message_out_in_doubt(journal: Journal) -> None:
    r = await journal.receive(IFACE, TARGET, "exam", key="E1")
    (first,) = await journal.claim_due(TARGET)
    assert not first.in_doubt  # never held before
    assert await journal.claim_due(TARGET, now=T0 + LEASE - 0.1) == []
    (again,) = await journal.claim_due(TARGET, now=T0 + LEASE)  # the holder died mid-send
    assert again.id == r.id and again.in_doubt
    assert (await journal.get(r.id)).in_doubt  # type: ignore[union-attr]  # persisted, not only handed out


async def test_leases_given_up_on_purpose_are_not_in_doubt(journal: Journal) -> None:
    await journal.receive(IFACE, TARGET, "a", key="A")
    await journal.receive(IFACE, TARGET, "b", key="B")
    a, b = await journal.claim_due(TARGET)
    assert await journal.release([(a.id, a.lease or "")]) == 1  # never sent
    await journal.schedule_retry(b.id, T0 + 1, "503", attempt=Attempt("retry", status=503), lease=b.lease)  # the platform answered
    back = await journal.claim_due(TARGET, now=T0 + 1)
    assert sorted(m.id for m in back) == [a.id, b.id]
    assert not any(m.in_doubt for m in back)


async def test_a_hand_off_is_not_in_doubt_until_its_lease_runs_out(journal: Journal) -> None:
    _, m = await journal.receive_claimed(Incoming(IFACE, TARGET, "exam", "E1", "exams", b'{"wire":1}'))
    assert m is not None and not m.in_doubt and m == replace(await journal.get(m.id), source=None)  # type: ignore[type-var]
    (back,) = await journal.claim_due(TARGET, now=T0 + LEASE)  # handed to a sender that was killed
    assert back.id == m.id and back.in_doubt

    _, n = await journal.receive_claimed(Incoming(IFACE, TARGET, "other", "E2", "exams", b'{"wire":2}'))
    assert n is not None
    await journal.release([(n.id, n.lease or "")])  # a stopping sender gives it back unsent
    (given_back,) = await journal.claim_due(TARGET, now=T0 + 1)
    assert given_back.id == n.id and not given_back.in_doubt


async def test_the_doubt_survives_a_retry_that_does_not_settle_it_and_a_reopen(tmp_path: Path, clock: Clock) -> None:
    path = str(tmp_path / "journal.db")
    j = await Journal.open(path, clock=clock, lease_s=LEASE)
    r = await j.receive(IFACE, TARGET, "exam", key="E1")
    await j.claim_due(TARGET)
    m = await claim_one(j, T0 + LEASE)
    assert m.in_doubt
    failed = Attempt("retry", "POST /interface/queryFormerlyExam", 503, error="in doubt: the query failed")
    await j.schedule_retry(r.id, T0 + 40, "query failed", attempt=failed, lease=m.lease, in_doubt=True)
    await j.close()

    j = await Journal.open(path, clock=clock, lease_s=LEASE)
    try:
        stored = await j.get(r.id)
        assert stored is not None and stored.state is State.ERROR and stored.in_doubt and stored.lease is None
        again = await claim_one(j, T0 + 40)
        assert again.in_doubt  # a retry, not a dead holder: still in doubt from before
    finally:
        await j.close()


async def test_an_outcome_clears_the_doubt(journal: Journal) -> None:
    sent = await journal.receive(IFACE, TARGET, "a", key="A")
    retried = await journal.receive(IFACE, TARGET, "b", key="B")
    await journal.claim_due(TARGET)
    a, b = await journal.claim_due(TARGET, now=T0 + LEASE)
    assert a.in_doubt and b.in_doubt
    await journal.mark_sent(a.id, attempt=Attempt("reconciled", error="reconciled: found on the platform"), lease=a.lease)
    await journal.schedule_retry(b.id, T0 + LEASE + 1, "503", attempt=Attempt("retry", status=503), lease=b.lease)
    done = await journal.get(sent.id)
    assert done is not None and done.state is State.SENT and not done.in_doubt
    assert not (await journal.get(retried.id)).in_doubt  # type: ignore[union-attr]  # the platform answered the resend
    (b2,) = await journal.claim_due(TARGET, now=T0 + LEASE + 1)
    assert b2.id == b.id and not b2.in_doubt


async def test_dead_in_doubt_is_still_in_doubt_when_replayed(journal: Journal) -> None:
    r = await journal.receive(IFACE, TARGET, "exam", key="E1")
    await journal.claim_due(TARGET)
    m = await claim_one(journal, T0 + LEASE)
    await journal.mark_dead(r.id, "in doubt, query refused", attempt=Attempt("fatal", status=400), lease=m.lease, in_doubt=True)
    assert await journal.replay(r.id, now=T0 + LEASE + 1) is State.RECEIVED
    again = await claim_one(journal, T0 + LEASE + 1)
    assert again.in_doubt  # the replay asks the platform again before sending


async def test_a_journal_from_before_the_column_marks_its_leftovers_in_doubt(tmp_path: Path, clock: Clock) -> None:
    """An engine upgraded after a crash: the old journal's held message is in doubt when claimed."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE schema_migrations ( version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
        c.executescript(MIGRATIONS[0][2])
        c.execute("INSERT INTO schema_migrations VALUES (1, 'v1', 0)")
        row = ("INSERT INTO messages (interface, target, state, idem_key, payload_hash, created_at, updated_at, cycle_at,"
               " next_attempt_at, lease)")
        c.execute(row + " VALUES (?, ?, 'TRANSLATED', 'E1', 'h', ?, ?, ?, ?, 'dead.1')", (IFACE, TARGET, T0, T0, T0, T0 + LEASE))
        c.execute(row + " VALUES (?, ?, 'ERROR', 'E2', 'h', ?, ?, ?, ?, NULL)", (IFACE, TARGET, T0, T0, T0, T0 + 1))
        c.execute("INSERT INTO payloads (id, source, translated) VALUES (1, x'7b7d', x'7b7d'), (2, x'7b7d', x'7b7d')")
    j = await Journal.open(str(path), clock=clock, lease_s=LEASE)
    try:
        got = {m.key: m.in_doubt for m in await j.claim_due(TARGET, now=T0 + LEASE)}
        assert got == {"E1": True, "E2": False}
    finally:
        await j.close()
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION


async def test_specbridge_messages_marks_what_is_in_doubt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`specbridge messages` (list, --show, --json) says which messages are in doubt; the others say nothing."""
    from engine.cli import main

    path = str(tmp_path / "journal.db")
    async with await Journal.open(path, lease_s=LEASE) as j:
        doubt = await j.receive(IFACE, TARGET, "a", key="A")
        fine = await j.receive(IFACE, TARGET, "b", key="B")
        await j.claim_due(TARGET, limit=1)
        got = await j.claim_due(TARGET, now=time.time() + LEASE + 1)  # the first one's holder died mid-send
        assert {m.id: m.in_doubt for m in got} == {doubt.id: True, fine.id: False}
    assert await asyncio.to_thread(main, ["messages", "--journal", path]) == 0
    out, err = capsys.readouterr()
    lines = {int(line.split()[0][1:]): line for line in out.splitlines()}
    assert lines[doubt.id].split()[1] == "RECEIVED?" and lines[fine.id].split()[1] == "RECEIVED"
    assert "?: in doubt: its delivery may have reached the platform with no outcome recorded" in err
    assert await asyncio.to_thread(main, ["messages", "--journal", path, "--show", str(doubt.id)]) == 0
    assert "RECEIVED (in doubt)" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["messages", "--journal", path, "--json"]) == 0
    assert {h["id"]: h["in_doubt"] for h in json.loads(capsys.readouterr().out)} == {doubt.id: True, fine.id: False}

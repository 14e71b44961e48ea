"""The group-commit writer: a batch runs without savepoints, and a failing op still undoes only itself."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from pathlib import Path

import pytest

from engine.journal import Attempt, Journal, LeaseLost, State, UnknownMessage
from engine.journal.db import Writer, open_db

IFACE = "jilin_imaging/savePatientExam"


async def test_a_failing_op_mid_batch_undoes_only_its_own_writes(tmp_path: Path) -> None:
    db = await open_db(str(tmp_path / "w.db"))
    try:
        await db.call(lambda c: c.execute("CREATE TABLE t (v TEXT)"))
        w = Writer(db)
        calls: list[str] = []

        def put(v: str, fail: bool = False):  # type: ignore[no-untyped-def]
            def op(c: sqlite3.Connection) -> int:
                calls.append(v)
                c.execute("INSERT INTO t (v) VALUES (?)", (v,))
                if fail:
                    raise ValueError(f"{v} refused")
                return int(c.execute("SELECT count(*) FROM t").fetchone()[0])

            return op

        results = await asyncio.gather(w.submit(put("a")), w.submit(put("b", fail=True)), w.submit(put("c")), return_exceptions=True)
        assert isinstance(results[1], ValueError)
        assert results[0] == 1 and results[2] == 2  # counted as if b never ran
        rows = await db.call(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY rowid")])
        assert rows == ["a", "c"]
        assert calls[:3] == ["a", "b", "a"]  # the first pass stopped at b; the batch ran again, isolated
        assert (w.batches, w.ops) == (1, 3)
        # alone in its batch, a failing op is not run twice
        calls.clear()
        with pytest.raises(ValueError):
            await w.submit(put("d", fail=True))
        assert calls == ["d"]
        assert await db.call(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 2
    finally:
        await db.close()


async def test_finish_counts_attempts_and_checks_the_lease_in_one_pass(tmp_path: Path) -> None:
    t = [1000.0]
    async with await Journal.open(str(tmp_path / "j.db"), clock=lambda: t[0], lease_s=10) as j:
        r = await j.receive(IFACE, "jilin", b"{}", key="k1")
        (m,) = await j.claim_due("jilin")
        await j.schedule_retry(m.id, t[0] + 5, "busy", attempt=Attempt("retry", "POST /x", 503), lease=m.lease)
        t[0] += 6
        (m,) = await j.claim_due("jilin")
        with pytest.raises(LeaseLost):
            await j.mark_sent(m.id, attempt=Attempt("ok", "POST /x", 200), lease="someone-else")
        await j.mark_sent(m.id, attempt=Attempt("ok", "POST /x", 200), lease=m.lease)
        got = await j.get(r.id)
        assert got is not None and got.state is State.SENT and got.attempts == 2 and got.lease is None
        assert [(a.n, a.outcome, a.status) for a in got.history] == [(1, "retry", 503), (2, "ok", 200)]
        assert got.updated_at == t[0] and got.next_attempt_at is None
        await j.replay(r.id)  # a replay resets the budget, the numbering goes on
        (m,) = await j.claim_due("jilin")
        await j.mark_dead(m.id, "no", attempt=Attempt("fatal", "POST /x", 400), lease=m.lease)
        got = await j.get(r.id)
        assert got is not None and got.attempts == 1 and [a.n for a in got.history] == [1, 2, 3]
        await j.mark_dead(r.id, "again")  # no attempt: counts nothing
        got = await j.get(r.id)
        assert got is not None and got.attempts == 1 and got.last_error == "again"


async def test_submit_many_resumes_its_caller_once_with_every_outcome_in_order(tmp_path: Path) -> None:
    db = await open_db(str(tmp_path / "m.db"))
    try:
        await db.call(lambda c: c.execute("CREATE TABLE t (v TEXT NOT NULL)"))
        w = Writer(db, max_batch=2)  # five ops: three batches

        def put(v: str | None):  # type: ignore[no-untyped-def]
            return lambda c: c.execute("INSERT INTO t (v) VALUES (?)", (v,)).lastrowid

        got = await w.submit_many([put("a"), put("b"), put(None), put("d"), put("e")])
        assert [ok for ok, _ in got] == [True, True, False, True, True]
        assert isinstance(got[2][1], sqlite3.IntegrityError)
        assert await db.call(lambda c: [r[0] for r in c.execute("SELECT v FROM t ORDER BY rowid")]) == ["a", "b", "d", "e"]
        assert w.batches == 3 and await w.submit_many([]) == []
        # a commit that fails fails every op of its batch, each told so
        await db.call(lambda c: c.execute("CREATE TRIGGER no AFTER INSERT ON t BEGIN SELECT RAISE(ABORT, 'full'); END"))
        bad = await w.submit_many([put("x"), put("y")])
        assert [ok for ok, _ in bad] == [False, False]
    finally:
        await db.close()


async def test_a_delivery_recorded_after_a_replay_numbers_its_attempt_after_the_earlier_ones(tmp_path: Path) -> None:
    async with await Journal.open(str(tmp_path / "j.db"), lease_s=10) as j:
        r = await j.receive(IFACE, "jilin", b"{}", key="k1")
        (m,) = await j.claim_due("jilin")
        await j.mark_dead(m.id, "no", attempt=Attempt("fatal", "POST /x", 400), lease=m.lease)
        await j.replay(r.id)
        (m,) = await j.claim_due("jilin")
        await j.mark_sent(m.id, attempt=Attempt("ok", "POST /x", 200), lease=m.lease)
        got = await j.get(r.id)
        assert got is not None and got.state is State.SENT and got.attempts == 1 and not got.in_doubt
        assert [(a.n, a.outcome) for a in got.history] == [(1, "fatal"), (2, "ok")]
        with pytest.raises(UnknownMessage):
            await j.mark_sent(r.id + 99, attempt=Attempt("ok", "POST /x", 200), lease="x")
        with pytest.raises(LeaseLost):  # sent already: its lease is gone
            await j.mark_sent(r.id, attempt=Attempt("ok", "POST /x", 200), lease=m.lease)
        assert len((await j.get(r.id)).history) == 2  # type: ignore[union-attr]  # nothing recorded by the refusals


async def test_close_optimizes_under_the_writers_lock_so_another_process_writing_cannot_fail_it(tmp_path: Path) -> None:
    """With delivery processes several processes write the journal, taking turns through the lock file
    beside it. PRAGMA optimize at close writes statistics: outside that lock it could meet another
    process mid-commit and fail busy (seen with two delivery processes stopping at once)."""
    path = tmp_path / "j.db"
    j = await Journal.open(str(path))
    await j.receive_batch([])
    other = os.open(f"{path}-writer.lock", os.O_RDWR)  # another process's writer, mid-commit
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        closing = asyncio.create_task(j.close())
        await asyncio.sleep(0.3)
        assert not closing.done(), "close ran its optimize while another writer held the lock"
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    await asyncio.wait_for(closing, 10)  # then it finishes, without an error


async def test_one_lost_lease_in_a_batch_of_deliveries_fails_only_its_own_mark(tmp_path: Path) -> None:
    """Marks that commit together stay each its own: a refused one (a lost lease, an unknown id) fails
    alone and records nothing; the others are SENT."""
    async with await Journal.open(str(tmp_path / "j.db"), lease_s=30) as j:
        for i in range(5):
            await j.receive(IFACE, "jilin", f"r{i}".encode(), key=f"k{i}")
        held = await j.claim_due("jilin", limit=10)
        ok = Attempt("ok", "POST /x", 200)
        marks = [j.mark_sent(m.id, attempt=ok, lease=m.lease if i != 2 else "someone-else") for i, m in enumerate(held)]
        marks.append(j.mark_sent(held[-1].id + 100, attempt=ok, lease="x"))  # not in the journal
        got = await asyncio.gather(*marks, return_exceptions=True)
        assert isinstance(got[2], LeaseLost) and isinstance(got[5], UnknownMessage)
        assert [g is None for g in got] == [True, True, False, True, True, False]
        states = [(await j.get(m.id)).state for m in held]  # type: ignore[union-attr]
        assert states == [State.SENT, State.SENT, held[2].state, State.SENT, State.SENT]  # the refused one untouched
        assert len((await j.get(held[2].id)).history) == 0  # type: ignore[union-attr]  # nothing recorded for the refused one

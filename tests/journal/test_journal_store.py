"""The journal on real SQLite files: durability, idempotency, leases, retries, replay, search, prune."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.journal import (
    Attempt,
    Incoming,
    Journal,
    JournalError,
    KeyPolicy,
    LeaseLost,
    State,
    UnknownMessage,
)
from tests.journal.support import IFACE, T0, TARGET, Clock


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "journal.db")


@pytest_asyncio.fixture
async def journal(db_path: str, clock: Clock) -> AsyncIterator[Journal]:
    j = await Journal.open(db_path, clock=clock, lease_s=30)
    yield j
    await j.close()


@pytest.mark.asyncio
async def test_durable_across_close_and_reopen(db_path: str, clock: Clock) -> None:
    j = await Journal.open(db_path, clock=clock)
    r = await j.receive(IFACE, TARGET, {"examNo": "E1", "idCardNo": "x"}, key="E1", route="pacs")
    await j.mark_translated(r.id, {"wire": 1})
    await j.record_attempt(r.id, Attempt("retry", "POST /saveExam 120B", 503, "503", "上传失败"))
    await j.schedule_retry(r.id, T0 + 60, "503 上传失败")
    await j.kv_set("auth:jilin", '{"count": 3}')
    before = await j.get(r.id)
    await j.close()

    j = await Journal.open(db_path, clock=clock)
    after = await j.get(r.id)
    assert after == before
    assert after is not None and after.state is State.ERROR and after.next_attempt_at == T0 + 60
    assert after.source == b'{"examNo":"E1","idCardNo":"x"}' and after.translated == b'{"wire":1}'
    assert [a.status for a in after.history] == [503]
    assert await j.kv_get("auth:jilin") == '{"count": 3}'
    assert (await j.receive(IFACE, TARGET, {"idCardNo": "x", "examNo": "E1"}, key="E1")).duplicate
    await j.close()

    with sqlite3.connect(db_path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("SELECT version FROM schema_migrations").fetchall() == [(1,), (2,)]


@pytest.mark.asyncio
async def test_refuses_a_newer_schema(db_path: str) -> None:
    await (await Journal.open(db_path)).close()
    with sqlite3.connect(db_path) as c:
        c.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(JournalError, match="newer"):
        await Journal.open(db_path)


@pytest.mark.asyncio
async def test_same_key_same_payload_is_a_duplicate(journal: Journal) -> None:
    a = await journal.receive(IFACE, TARGET, {"a": 1, "b": [1, 2]}, key="K")
    b = await journal.receive(IFACE, TARGET, {"b": [1, 2], "a": 1}, key="K")
    assert (a.duplicate, b.duplicate, b.id, b.version) == (False, True, a.id, 1)
    other_target = await journal.receive(IFACE, "city", {"a": 1, "b": [1, 2]}, key="K")
    other_iface = await journal.receive("jilin_imaging/other", TARGET, {"a": 1, "b": [1, 2]}, key="K")
    unkeyed = [await journal.receive(IFACE, TARGET, b"same") for _ in range(2)]
    assert not other_target.duplicate and not other_iface.duplicate
    assert len({a.id, other_target.id, other_iface.id, *(r.id for r in unkeyed)}) == 5


@pytest.mark.asyncio
async def test_duplicate_of_a_sent_message_is_not_delivered_again(journal: Journal, clock: Clock) -> None:
    r = await journal.receive(IFACE, TARGET, "payload", key="K")
    (m,) = await journal.claim_due(TARGET)
    await journal.mark_sent(m.id, lease=m.lease)
    assert (await journal.receive(IFACE, TARGET, "payload", key="K")).duplicate
    assert await journal.claim_due(TARGET, now=clock.t + 3600) == []
    assert (await journal.get(r.id)).state is State.SENT  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_changed_payload_latest_supersedes_unsent_versions(journal: Journal) -> None:
    v1 = await journal.receive(IFACE, TARGET, {"result": "1.0"}, key="R1")
    v2 = await journal.receive(IFACE, TARGET, {"result": "1.1"}, key="R1")
    assert (v2.duplicate, v2.version) == (False, 2)
    old = await journal.get(v1.id)
    assert old is not None and old.state is State.DEAD and old.superseded_by == v2.id
    assert old.last_error == f"superseded by #{v2.id}"
    assert [m.id for m in await journal.claim_due(TARGET)] == [v2.id]
    assert await journal.replay_dead(IFACE) == 0
    with pytest.raises(JournalError, match="superseded"):
        await journal.replay(v1.id)
    back = await journal.receive(IFACE, TARGET, {"result": "1.0"}, key="R1")
    assert (back.duplicate, back.version) == (False, 3)  # A, B, A: the platform holds B, so A goes again


@pytest.mark.asyncio
async def test_superseded_version_in_flight_finishes_then_the_new_one_goes(journal: Journal, clock: Clock) -> None:
    v1 = await journal.receive(IFACE, TARGET, "v1", key="R")
    (held,) = await journal.claim_due(TARGET)
    v2 = await journal.receive(IFACE, TARGET, "v2", key="R")
    assert await journal.claim_due(TARGET) == []  # never two versions of one key at once
    state = await journal.schedule_retry(v1.id, clock.t + 10, "503", lease=held.lease)
    assert state is State.DEAD
    assert [m.id for m in await journal.claim_due(TARGET)] == [v2.id]


@pytest.mark.asyncio
async def test_superseded_version_of_a_crashed_worker_is_retired_at_lease_expiry(journal: Journal, clock: Clock) -> None:
    v1 = await journal.receive(IFACE, TARGET, "v1", key="R")
    await journal.claim_due(TARGET)
    v2 = await journal.receive(IFACE, TARGET, "v2", key="R")
    assert await journal.claim_due(TARGET, now=clock.t + 29) == []
    assert [m.id for m in await journal.claim_due(TARGET, now=clock.t + 31)] == [v2.id]
    assert (await journal.get(v1.id)).state is State.DEAD  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_version_policy_delivers_every_version_in_order(journal: Journal, clock: Clock) -> None:
    ids = [(await journal.receive(IFACE, TARGET, f"v{i}", key="R", policy=KeyPolicy.VERSION)).id for i in range(3)]
    sent = []
    for _ in range(3):
        claimed = await journal.claim_due(TARGET)
        assert len(claimed) == 1
        await journal.mark_sent(claimed[0].id, lease=claimed[0].lease)
        sent.append(claimed[0].id)
    assert sent == ids


@pytest.mark.asyncio
async def test_ignore_policy_first_payload_wins(db_path: str, clock: Clock) -> None:
    async with await Journal.open(db_path, clock=clock, key_policy=KeyPolicy.IGNORE) as j:
        a = await j.receive(IFACE, TARGET, "first", key="K")
        b = await j.receive(IFACE, TARGET, "second", key="K")
        assert b.duplicate and b.id == a.id
        assert (await j.get(a.id)).source == b"first"  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_leases_exclude_others_until_they_expire(journal: Journal, clock: Clock) -> None:
    ids = [(await journal.receive(IFACE, TARGET, f"m{i}")).id for i in range(5)]
    first = await journal.claim_due(TARGET, limit=3)
    assert [m.id for m in first] == ids[:3] and len({m.lease for m in first}) == 1
    second = await journal.claim_due(TARGET, limit=10)
    assert [m.id for m in second] == ids[3:]
    assert await journal.claim_due(TARGET, now=clock.t + 29.9) == []
    again = await journal.claim_due(TARGET, limit=10, now=clock.t + 30)
    assert [m.id for m in again] == ids  # the first holder died: everything comes back
    with pytest.raises(LeaseLost):
        await journal.mark_sent(ids[0], lease=first[0].lease)
    await journal.mark_sent(ids[0], lease=again[0].lease)
    with pytest.raises(UnknownMessage):
        await journal.mark_sent(10_000)


@pytest.mark.asyncio
async def test_retries_come_due_in_order(journal: Journal, clock: Clock) -> None:
    ids = [(await journal.receive(IFACE, TARGET, f"m{i}")).id for i in range(4)]
    other = await journal.receive(IFACE, "city", "elsewhere")
    claimed = await journal.claim_due(TARGET, limit=10)
    for m, delay in zip(claimed, (50, 10, 30, 10), strict=True):
        att = Attempt("retry", "POST /x", 503)
        await journal.schedule_retry(m.id, clock.t + delay, "HTTP 503", attempt=att, lease=m.lease)
    assert await journal.claim_due(TARGET, now=clock.t + 9) == []
    due = await journal.claim_due(TARGET, limit=10, now=clock.t + 40)
    assert [m.id for m in due] == [ids[1], ids[3], ids[2]]
    assert all(m.state is State.ERROR and m.attempts == 1 and m.last_error == "HTTP 503" for m in due)
    assert [m.id for m in await journal.claim_due("city")] == [other.id]


@pytest.mark.asyncio
async def test_mark_translated_and_dead(journal: Journal) -> None:
    r = await journal.receive(IFACE, TARGET, {"src": 1})
    (m,) = await journal.claim_due(TARGET)
    assert m.state is State.RECEIVED
    await journal.mark_translated(m.id, b"<xml/>", lease=m.lease)
    await journal.mark_dead(m.id, "400 入参不规范", attempt=Attempt("fatal", status=200, code="400"), lease=m.lease)
    dead = await journal.get(r.id)
    assert dead is not None and dead.state is State.DEAD and dead.translated == b"<xml/>" and dead.next_attempt_at is None
    with pytest.raises(JournalError, match="replay"):
        await journal.mark_translated(r.id, b"again")
    pre = await journal.receive(IFACE, TARGET, {"src": 2}, translated={"wire": 2})
    assert (await journal.get(pre.id)).state is State.TRANSLATED  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_replay_one_and_all_dead(journal: Journal, clock: Clock) -> None:
    ids = [(await journal.receive(IFACE, TARGET, f"m{i}", translated=f"t{i}")).id for i in range(3)]
    other = await journal.receive("jilin_imaging/other", TARGET, "o", translated="t")
    for m in await journal.claim_due(TARGET, limit=10):
        await journal.mark_dead(m.id, "fatal", attempt=Attempt("fatal", status=400), lease=m.lease)
    clock.t += 100
    assert await journal.replay(ids[0], retranslate=False) is State.TRANSLATED
    m = await journal.get(ids[0])
    assert m is not None and (m.attempts, m.cycle_at, m.next_attempt_at, m.last_error) == (0, clock.t, clock.t, None)
    assert len(m.history) == 1
    assert await journal.replay_dead(IFACE) == 2
    assert {s.id for s in await journal.search(state=State.RECEIVED)} == set(ids[1:])
    assert (await journal.get(other.id)).state is State.DEAD  # type: ignore[union-attr]
    claimed = await journal.claim_due(TARGET, limit=10)
    assert {c.id for c in claimed} == set(ids)
    with pytest.raises(JournalError, match="in flight"):
        await journal.replay(ids[0])
    await journal.mark_sent(ids[0], attempt=Attempt("ok", status=200), lease=claimed[0].lease)
    assert [a.n for a in (await journal.get(ids[0])).history] == [1, 2]  # type: ignore[union-attr]
    with pytest.raises(UnknownMessage):
        await journal.replay(999)


@pytest.mark.asyncio
async def test_attempt_bodies_are_bounded(db_path: str, clock: Clock) -> None:
    async with await Journal.open(db_path, clock=clock, max_body=100) as j:
        r = await j.receive(IFACE, TARGET, "x")
        await j.record_attempt(r.id, Attempt("retry", "POST /x", 502, body="E" * 1000, duration_ms=3.5))
        (a,) = (await j.get(r.id)).history  # type: ignore[union-attr]
        assert a.body is not None and a.body.startswith("E" * 100) and "900 chars truncated" in a.body
        assert (a.n, a.status, a.duration_ms, a.started_at) == (1, 502, 3.5, clock.t)


@pytest.mark.asyncio
async def test_search_filters_and_keyset_pagination(journal: Journal, clock: Clock) -> None:
    ifaces = ["p/A", "p/B", "p/C"]
    expected: list[tuple[int, str, str, float]] = []
    for i in range(60):
        clock.t = T0 + i
        iface = ifaces[i % 3]
        r = await journal.receive(iface, TARGET, f"m{i}", key=f"k{i % 20}")
        expected.append((r.id, iface, "RECEIVED", clock.t))
    for m in await journal.claim_due(TARGET, limit=100):
        if m.id % 4 == 0:
            await journal.mark_dead(m.id, "x", lease=m.lease)
        elif m.id % 4 == 1:
            await journal.mark_sent(m.id, lease=m.lease)
    states = {m.id: m.state for m in [await journal.get(e[0]) for e in expected] if m is not None}

    async def collect(**kw: object) -> list[int]:
        out: list[int] = []
        after = None
        while True:
            page = await journal.search(limit=7, after_id=after, **kw)  # type: ignore[arg-type]
            out += [s.id for s in page]
            if len(page) < 7:
                return out
            after = page[-1].id

    def want(pred: object) -> list[int]:
        return sorted((e[0] for e in expected if pred(e)), reverse=True)  # type: ignore[operator]

    assert await collect() == want(lambda e: True)
    assert await collect(interface="p/B") == want(lambda e: e[1] == "p/B")
    assert await collect(state="DEAD") == want(lambda e: states[e[0]] is State.DEAD)
    assert await collect(state=State.SENT, interface="p/C") == want(lambda e: states[e[0]] is State.SENT and e[1] == "p/C")
    assert await collect(key="k3") == want(lambda e: e[0] in {4, 24, 44})
    assert await collect(since=T0 + 10, until=T0 + 20) == want(lambda e: T0 + 10 <= e[3] < T0 + 20)
    assert await collect(since=T0 + 55, interface="p/A") == want(lambda e: e[3] >= T0 + 55 and e[1] == "p/A")
    assert await collect(since=T0 + 1000) == []
    assert await collect(until=T0) == []
    oldest = await journal.search(limit=5, newest_first=False, state="RECEIVED")
    assert [s.id for s in oldest] == sorted(e[0] for e in expected if states[e[0]] is State.RECEIVED)[:5]
    assert await journal.stats() == {
        i: {s: sum(1 for e in expected if e[1] == i and states[e[0]] == s) for s in {states[e[0]] for e in expected if e[1] == i}}
        for i in ifaces
    }


@pytest.mark.asyncio
async def test_created_at_stays_monotonic_when_the_clock_steps_back(journal: Journal, clock: Clock) -> None:
    a = await journal.receive(IFACE, TARGET, "a")
    clock.t -= 3600
    b = await journal.receive(IFACE, TARGET, "b")
    ma, mb = await journal.get(a.id), await journal.get(b.id)
    assert ma is not None and mb is not None and mb.created_at >= ma.created_at
    assert [s.id for s in await journal.search(since=T0)] == [b.id, a.id]


@pytest.mark.asyncio
async def test_prune_removes_old_finished_messages_with_attempts(db_path: str, clock: Clock) -> None:
    async with await Journal.open(db_path, clock=clock) as j:
        for i in range(30):
            clock.t = T0 + i
            await j.receive(IFACE, TARGET, f"m{i}")
        for m in await j.claim_due(TARGET, limit=100):
            att = Attempt("ok", status=200)
            if m.id % 3 == 0:
                await j.mark_sent(m.id, attempt=att, lease=m.lease)
            elif m.id % 3 == 1:
                await j.mark_dead(m.id, "x", attempt=att, lease=m.lease)
            else:
                await j.schedule_retry(m.id, clock.t + 60, "503", attempt=att, lease=m.lease)
        old = [i for i in range(1, 31) if T0 + i - 1 < T0 + 20]
        want = sum(1 for i in old if i % 3 in (0, 1))
        assert await j.prune(T0 + 20, chunk=4) == want
        assert await j.prune(T0 + 20, chunk=4) == 0
        left = {s.id for s in await j.search(limit=100)}
        assert left == {i for i in range(1, 31) if i not in old or i % 3 == 2}
        assert await j.prune(T0 + 100, states=["ERROR"]) == 10
    with sqlite3.connect(db_path) as c:
        remaining = {r[0] for r in c.execute("SELECT id FROM messages")}
        assert {r[0] for r in c.execute("SELECT message_id FROM attempts")} == remaining
        assert {r[0] for r in c.execute("SELECT id FROM payloads")} == remaining


@pytest.mark.asyncio
async def test_group_commit_batches_concurrent_writers(db_path: str) -> None:
    async with await Journal.open(db_path) as j:
        receipts = await asyncio.gather(*(j.receive(IFACE, TARGET, f"m{i}", key=f"k{i}") for i in range(200)))
        batches, ops = j.commit_stats
        assert ops == 200 and batches < 200
        assert len({r.id for r in receipts}) == 200
        many = await j.receive_many([Incoming(IFACE, TARGET, f"m{i}", key=f"k{i}") for i in range(190, 210)])
        assert [r.duplicate for r in many] == [True] * 10 + [False] * 10


@pytest.mark.asyncio
async def test_one_failing_write_does_not_undo_its_batch(journal: Journal) -> None:
    ok = [journal.receive(IFACE, TARGET, f"m{i}") for i in range(5)]
    bad = journal.mark_sent(12345)
    results = await asyncio.gather(*ok, bad, return_exceptions=True)
    assert isinstance(results[-1], UnknownMessage)
    assert len(await journal.search()) == 5


@pytest.mark.asyncio
async def test_two_processes_sharing_a_file_never_claim_the_same_message(db_path: str) -> None:
    a = await Journal.open(db_path)
    b = await Journal.open(db_path)
    try:
        await a.receive_many([Incoming(IFACE, TARGET, f"m{i}") for i in range(300)])
        rounds = await asyncio.gather(*(j.claim_due(TARGET, limit=7) for _ in range(30) for j in (a, b)))
        claimed = [m.id for r in rounds for m in r]
        assert len(claimed) == len(set(claimed)) == 300
    finally:
        await a.close()
        await b.close()


@pytest.mark.asyncio
async def test_closed_journal_says_so(db_path: str) -> None:
    j = await Journal.open(db_path)
    await j.close()
    await j.close()
    with pytest.raises(JournalError, match="closed"):
        await j.receive(IFACE, TARGET, "late")

"""The journal's half of the receive-to-sender hand-off: a new message journalled claimed in one
transaction (`receive_claimed`), and holds given back (`release`). Real SQLite files, a set clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from engine.journal import Incoming, Journal, LeaseLost, State
from tests.journal.support import IFACE, T0, TARGET, Clock


@pytest_asyncio.fixture
async def journal(tmp_path: Path, clock: Clock) -> AsyncIterator[Journal]:
    j = await Journal.open(str(tmp_path / "journal.db"), clock=clock, lease_s=30)
    yield j
    await j.close()


def rec(payload: str, key: str | None = "K", translated: bytes | None = b'{"wire":1}') -> Incoming:
    return Incoming(IFACE, TARGET, payload, key, "exams", translated)


async def test_a_new_message_comes_back_claimed_exactly_as_stored(journal: Journal) -> None:
    receipt, m = await journal.receive_claimed(rec("payload"))
    assert m is not None and not receipt.duplicate and m.id == receipt.id
    # what the sender gets in memory is what the journal holds, but the source: it sends the translation
    assert m == replace(await journal.get(m.id), source=None)  # type: ignore[type-var]
    assert m.state is State.TRANSLATED and m.lease and m.next_attempt_at == T0 + 30 and m.attempts == 0
    assert await journal.claim_due(TARGET) == []  # held: no sender can claim it too
    await journal.mark_sent(m.id, lease=m.lease)
    assert (await journal.get(m.id)).state is State.SENT  # type: ignore[union-attr]

    again, none = await journal.receive_claimed(rec("payload"))
    assert again.duplicate and again.id == m.id and none is None  # a duplicate is not handed out again


async def test_a_hand_off_nobody_sent_comes_back_when_its_lease_runs_out(journal: Journal, clock: Clock) -> None:
    _, m = await journal.receive_claimed(rec("payload", translated=None))
    assert m is not None and m.state is State.RECEIVED and m.translated is None
    assert m.source == (await journal.get(m.id)).source  # type: ignore[union-attr]  # its sender translates it first
    assert await journal.claim_due(TARGET, now=clock.t + 29.9) == []
    (back,) = await journal.claim_due(TARGET, now=clock.t + 30)  # the holder died: crash recovery as for a claim
    assert back.id == m.id and back.lease != m.lease
    with pytest.raises(LeaseLost):
        await journal.mark_sent(m.id, lease=m.lease)


async def test_a_new_version_waits_for_the_older_one_in_flight(journal: Journal) -> None:
    await journal.receive(IFACE, TARGET, "v1", key="R")
    (v1,) = await journal.claim_due(TARGET)
    receipt, m = await journal.receive_claimed(rec("v2", key="R"))
    assert m is None and not receipt.duplicate and receipt.version == 2  # journalled, due, not handed out
    assert await journal.claim_due(TARGET) == []  # never two versions of one key at once
    await journal.mark_sent(v1.id, lease=v1.lease)
    assert [x.id for x in await journal.claim_due(TARGET)] == [receipt.id]


async def test_a_new_version_of_an_unsent_one_supersedes_it_and_goes_at_once(journal: Journal) -> None:
    old = await journal.receive(IFACE, TARGET, "v1", key="R")  # due, nobody holds it
    _, m = await journal.receive_claimed(rec("v2", key="R"))
    assert m is not None and m.version == 2
    assert (await journal.get(old.id)).state is State.DEAD  # type: ignore[union-attr]


async def test_release_makes_a_held_message_due_now_and_only_for_its_holder(journal: Journal, clock: Clock) -> None:
    _, m = await journal.receive_claimed(rec("payload"))
    assert m is not None and m.lease is not None
    assert await journal.release([(m.id, "someone-else")]) == 0
    assert await journal.release([(m.id, m.lease)]) == 1
    assert [x.id for x in await journal.claim_due(TARGET)] == [m.id]
    assert await journal.release([]) == 0


async def test_a_batch_journals_each_record_in_its_own_right(journal: Journal) -> None:
    """A poller's window in one call: claimed where asked, due where not, a duplicate as a duplicate,
    and a record the journal refuses kept out alone."""
    first = await journal.receive(IFACE, TARGET, "seen", key="OLD")
    broken = Incoming(None, TARGET, "x", "BAD", "exams", None)  # type: ignore[arg-type]  # NOT NULL interface
    got = await journal.receive_batch([(rec("a", key="A"), True), (rec("seen", key="OLD"), True), (broken, False),
                                       (rec("b", key="B"), False)])
    assert [ok for ok, _ in got] == [True, True, False, True]
    (_, (ra, ma)), (_, (rdup, mdup)), (_, err), (_, rb) = got
    assert ma is not None and ma.id == ra.id and ma.lease and not ra.duplicate
    assert ma == replace(await journal.get(ma.id), source=None)  # type: ignore[type-var]  # handed out as stored, less the source
    assert rdup.duplicate and rdup.id == first.id and mdup is None
    assert "NOT NULL" in str(err)
    assert not rb.duplicate and (await journal.get(rb.id)).lease is None  # type: ignore[union-attr]
    due = await journal.claim_due(TARGET)
    assert sorted(m.id for m in due) == sorted([first.id, rb.id])  # the claimed one is not due; the refused one is nowhere
    assert (await journal.search(key="BAD")) == []


async def test_a_changed_record_under_a_journalled_key_becomes_its_next_version(journal: Journal) -> None:
    """The first version goes in with no lookup; a key already there is looked at, as before."""
    r1, m1 = await journal.receive_claimed(rec("v1", key="K2"))
    r2, m2 = await journal.receive_claimed(rec("v2", key="K2"))
    r3, m3 = await journal.receive_claimed(rec("v2", key="K2"))
    assert (r1.version, r2.version) == (1, 2) and not r2.duplicate and m1 is not None
    assert m2 is None  # waits for v1, which is in flight
    assert r3.duplicate and r3.id == r2.id and m3 is None

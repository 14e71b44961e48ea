"""Receive to sender through real parts (a SQLite journal, the jilin_imaging twin on loopback): a new
record is journalled claimed and sent with no claim transaction; a pause or a hot-reload swap that
lands while a record is being journalled is respected, and never breaks the receive."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import InboundMessage, Reply, many_of
from engine.bridge.model import JournalConfig, Route, RouteTarget, Source
from engine.journal import State
from engine.runtime.bridge import BridgeRuntime
from tests.bridge.conftest import example, make_bridge, runtime_for

EXAM = "savePatientExam"


async def until_state(rt: BridgeRuntime, mid: int, want: State, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (got := await state(rt, mid)) is not want:
        assert loop.time() < end, f"#{mid} still {got}, not {want}"
        await asyncio.sleep(0.02)


def record(specset: Any, n: int) -> dict[str, Any]:
    return {**example(specset, "hospital_pacs/exam_report"), "REPORT_ID": f"R{n:05d}", "ACCESSION_NO": f"A{n:05d}"}


async def state(rt: BridgeRuntime, mid: int) -> State:
    assert rt.journal is not None
    m = await rt.journal.get(mid)
    assert m is not None
    return m.state


async def start(twins: Any, specset: Any, mappings: Any, tmp: Path, routes: dict[str, tuple[str, ...]]) -> BridgeRuntime:
    """routes: route id -> its targets (each a target on the one jilin_imaging twin)."""
    await twins.start("jilin_imaging")
    bridge = make_bridge(
        twins, tmp, sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
        routes=[Route(id=r, source="pacs", to=[RouteTarget(target=t, interface=EXAM) for t in ts]) for r, ts in routes.items()],
        targets={t: twins.target("jilin_imaging") for ts in routes.values() for t in ts},
    )
    return await runtime_for(bridge, specset, mappings, tmp)


async def test_a_new_record_is_sent_from_receive_without_a_claim(twins, specset, mappings, tmp_path: Path) -> None:
    rt = await start(twins, specset, mappings, tmp_path, {"exams": ("jilin",)})
    try:
        [first] = await rt.receive("pacs", record(specset, 1))  # also gets the token (its counters go to the journal's kv)
        await until_state(rt, first, State.SENT)
        assert rt.journal is not None
        _, ops = rt.journal.commit_stats
        [second] = await rt.receive("pacs", record(specset, 2))
        await until_state(rt, second, State.SENT)
        assert rt.journal.commit_stats[1] - ops == 2  # journalled claimed, then SENT: no claim in between
        m = await rt.journal.get(second)
        assert m is not None and [a.outcome for a in m.history] == ["ok"]
    finally:
        await rt.stop()


async def test_a_pause_landing_while_a_record_is_journalled_holds_it(twins, specset, mappings, tmp_path: Path) -> None:
    rt = await start(twins, specset, mappings, tmp_path, {"exams": ("jilin",), "others": ("jilin2",)})
    try:
        for warm in await rt.receive("pacs", record(specset, 1)):
            await until_state(rt, warm, State.SENT)
        receiving = asyncio.create_task(rt.receive("pacs", record(specset, 2)))
        await asyncio.sleep(0)  # the receive is now waiting for the journal, its hand-off decided
        await rt.pause("exams")
        held, flowing = await receiving  # one message per route
        await until_state(rt, flowing, State.SENT)
        assert rt.journal is not None
        m = await rt.journal.get(held)
        assert m is not None and m.state is State.TRANSLATED and m.attempts == 0
        assert m.lease is None  # given back at once, not left to its lease: resume sends it now
        await rt.resume("exams")
        await until_state(rt, held, State.SENT)
    finally:
        await rt.stop()


async def test_a_swap_removing_a_target_mid_receive_journals_the_record_for_both(twins, specset, mappings, tmp_path: Path) -> None:
    rt = await start(twins, specset, mappings, tmp_path, {"exams": ("jilin", "jilin2")})
    try:
        receiving = asyncio.create_task(rt.receive("pacs", record(specset, 1)))
        await asyncio.sleep(0)  # journalling the first target's message
        old = rt.bridge
        route = msgspec.structs.replace(old.routes[0], to=[old.routes[0].to[0]])
        rt.swap(msgspec.structs.replace(old, targets={"jilin": old.targets["jilin"]}, routes=[route]), rt.specset, rt.mappings)
        to_jilin, to_jilin2 = await receiving  # one configuration throughout: the removed target's message is journalled too
        await until_state(rt, to_jilin, State.SENT)
        assert rt.journal is not None
        m = await rt.journal.get(to_jilin2)
        assert m is not None and m.target == "jilin2" and m.state is State.TRANSLATED  # kept, for when the target is back
    finally:
        await rt.stop()


async def test_a_window_of_records_is_journalled_in_one_call_and_each_sent_once(twins, specset, mappings, tmp_path: Path) -> None:
    """receive_many (a poller's window): a message per record, handed to the sender as one `receive`
    would, a repeated record a duplicate of the first, each platform delivery made once."""
    rt = await start(twins, specset, mappings, tmp_path, {"exams": ("jilin",)})
    try:
        recs = [record(specset, n) for n in (1, 2, 3)]
        out = await rt.receive_many("pacs", [*recs, recs[0]])
        assert all(isinstance(ids, list) and len(ids) == 1 for ids in out)
        ids = [r[0] for r in out if isinstance(r, list)]
        assert ids[3] == ids[0] and len(set(ids)) == 3 and rt.stats.duplicates == 1
        for mid in set(ids):
            await until_state(rt, mid, State.SENT)
        stats = twins.running["jilin_imaging"].stats()
        assert stats["delivered"]["savePatientExam"] == 3 and not stats["duplicates"]
        # the same through the sink a poller is given: a window in one call, answered row by row
        many = many_of(rt.sink_for("pacs"))
        assert many is not None
        replies = await many([InboundMessage("hospital_pacs/exam_report", record(specset, n)) for n in (4, 5)])
        assert all(isinstance(r, Reply) and msgspec.json.decode(r.body) == {"accepted": 1} for r in replies)
        assert rt.journal is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while (await rt.journal.stats()).get("jilin_imaging/savePatientExam", {}).get("SENT") != 5:
            assert loop.time() < end, await rt.journal.stats()
            await asyncio.sleep(0.02)
        assert twins.running["jilin_imaging"].stats()["delivered"]["savePatientExam"] == 5
    finally:
        await rt.stop()


async def test_a_message_whose_lease_runs_out_while_it_waits_for_a_slot_goes_back_unsent(twins, specset, mappings,
                                                                                          tmp_path: Path) -> None:
    """A platform that turns slow leaves a sender holding more than it can send within their leases (it
    took them at the fast pace). What is still waiting for a slot when less than a timeout's worth of
    lease is left goes back to the journal unsent, not in doubt, and is claimed again: every record
    reaches the platform once. Sent on a lapsed lease instead, it would go twice (the journal hands it
    out again once its lease runs out)."""
    jilin = await twins.start("jilin_imaging")
    bridge = make_bridge(twins, tmp_path, sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
                         routes=[Route(id="exams", source="pacs", to=[RouteTarget(target="jilin", interface=EXAM)])],
                         targets={"jilin": twins.target("jilin_imaging", concurrency=1, timeout_s=1.0)})
    bridge = msgspec.structs.replace(bridge, journal=JournalConfig(path=str(tmp_path / "journal.db"), lease_s=3.0))
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        fast = [i for n in range(20) for i in await rt.receive("pacs", record(specset, n))]
        for mid in fast:  # at this pace the sender takes many hand-overs at once
            await until_state(rt, mid, State.SENT)
        jilin.twin.options.answer_delay_s = 0.5  # now each answer takes half a second, with one slot
        slow = [i for n in range(20, 28) for i in await rt.receive("pacs", record(specset, n))]
        for mid in slow:
            await until_state(rt, mid, State.SENT)
        got = dict(jilin.stats()["deliveries"][EXAM])
        assert len(got) == 28 and set(got.values()) == {1}  # each record once
        assert rt.journal is not None
        for mid in slow:
            m = await rt.journal.get(mid)
            assert m is not None and not m.in_doubt and [a.outcome for a in m.history] == ["ok"]
    finally:
        jilin.twin.options.answer_delay_s = 0.0
        await rt.stop()

"""In-doubt deliveries reconciled through real sockets: the jilin twin (token, SM2 of idCardNo) answers
queryFormerlyExam from the exams it stores, and counts savePatientExam deliveries by natural key.

A message "left in doubt" is journalled the way a killed sender leaves it: claimed, lease run out, no
outcome. Whether the platform already holds it is set up by a first bridge that delivered it for real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from engine.bridge.model import Bridge, JournalConfig, Route, RouteTarget, Source
from engine.journal import Message, State
from engine.runtime.bridge import BridgeRuntime, natural_key
from tests.bridge.conftest import example, make_bridge, runtime_for
from tests.bridge.test_e2e import wait_done

IFACE = "jilin_imaging/savePatientExam"
FOUND = "reconciled: found on the platform by queryFormerlyExam"


def exam_bridge(twins: Any, tmp: Path, platform: str, interface: str, journal: str) -> Bridge:
    bridge = make_bridge(twins, tmp, sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
                         routes=[Route(id="exams", source="pacs", to=[RouteTarget(target="t", interface=interface)])],
                         targets={"t": twins.target(platform)})
    return msgspec.structs.replace(bridge, journal=JournalConfig(path=str(tmp / journal)))


def jilin_bridge(twins: Any, tmp: Path, journal: str) -> Bridge:
    return exam_bridge(twins, tmp, "jilin_imaging", "savePatientExam", journal)


async def delivered_before(bridge: Bridge, specset: Any, mappings: Any, tmp: Path, record: dict[str, Any]) -> None:
    """The platform holds the record: a bridge with its own journal delivered it."""
    rt = await runtime_for(bridge, specset, mappings, tmp)
    try:
        await rt.receive("pacs", record)
        assert await wait_done(rt, 1) == {"SENT": 1}
    finally:
        await rt.stop()


async def left_in_doubt(bridge: Bridge, specset: Any, mappings: Any, tmp: Path, record: dict[str, Any]) -> BridgeRuntime:
    """A runtime (not started) whose journal holds `record` as a sender killed mid-send leaves it."""
    rt = BridgeRuntime(bridge, specset, mappings, base_dir=tmp)
    j = await rt.open_journal()
    route = bridge.routes[0]
    to = route.to[0]
    iface = specset.platforms[bridge.targets[to.target].platform].interfaces[to.interface]
    msg = rt.translate(bridge.sources[route.source].spec, route, to, record)
    raw = msgspec.json.encode(record)
    r = await j.receive(iface.qualified_id, to.target, raw, key=natural_key(iface, msg, raw), route=route.id,
                        translated=msgspec.json.encode(msg))
    (held,) = await j.claim_due(to.target, lease_s=0)  # claimed; the holder died before recording an outcome
    assert held.id == r.id and not held.in_doubt
    return rt


async def settled(rt: BridgeRuntime, n: int = 1) -> Message:
    await rt.start()
    assert (await wait_done(rt, n)).get("SENT") == n
    assert rt.journal is not None
    (hit,) = await rt.journal.search(limit=2)
    m = await rt.journal.get(hit.id)
    assert m is not None
    return m


def in_doubt_count(rt: BridgeRuntime, outcome: str, interface: str = IFACE) -> float:
    value = rt.metrics.registry.get_sample_value("specbridge_in_doubt_total", {"target": "t", "interface": interface, "outcome": outcome})
    return value or 0.0


def requests(twin: Any, interface: str) -> int:
    return int(twin.stats()["requests"].get(interface, 0))


async def test_in_doubt_and_already_on_the_platform_is_marked_sent_without_a_second_delivery(twins, specset, mappings,
                                                                                               tmp_path: Path) -> None:
    jilin = await twins.start("jilin_imaging")
    record = example(specset, "hospital_pacs/exam_report")
    await delivered_before(jilin_bridge(twins, tmp_path, "first.db"), specset, mappings, tmp_path, record)
    rt = await left_in_doubt(jilin_bridge(twins, tmp_path, "journal.db"), specset, mappings, tmp_path, record)
    try:
        m = await settled(rt)
        assert m.state is State.SENT and not m.in_doubt
        last = m.history[-1]
        assert last.outcome == "reconciled" and last.error == FOUND and last.status == 200
        assert "queryFormerlyExam" in last.request
        assert [a.outcome for a in m.history] == ["reconciled"]  # asked, and nothing sent
        assert in_doubt_count(rt, "reconciled") == 1
    finally:
        await rt.stop()
    stats = jilin.stats()
    assert list(stats["deliveries"]["savePatientExam"].values()) == [1]  # the twin counts one delivery of the key
    assert requests(jilin, "queryFormerlyExam") == 1 and requests(jilin, "savePatientExam") == 1
    assert "queryFormerlyExam" not in stats["deliveries"]  # a query is not a delivery


async def test_in_doubt_and_missing_on_the_platform_is_sent_once(twins, specset, mappings, tmp_path: Path) -> None:
    jilin = await twins.start("jilin_imaging")
    record = example(specset, "hospital_pacs/exam_report")
    rt = await left_in_doubt(jilin_bridge(twins, tmp_path, "journal.db"), specset, mappings, tmp_path, record)
    try:
        m = await settled(rt)
        assert [(a.outcome, a.status, a.code) for a in m.history] == [("in_doubt", 200, "404"), ("ok", 200, "200")]  # 未查询到数据
        assert m.history[0].error == "in doubt: not found on the platform by queryFormerlyExam: sending"
        assert in_doubt_count(rt, "not_found") == 1 and in_doubt_count(rt, "reconciled") == 0
    finally:
        await rt.stop()
    assert list(jilin.stats()["deliveries"]["savePatientExam"].values()) == [1]
    (exam,) = jilin.twin.store.find("exams")
    assert exam.data["idCardNo"] == record["ID_CARD"]  # the twin decrypted the SM2 field, and matched the query on it


async def test_a_failing_query_is_retried_still_in_doubt_and_never_resends(twins, specset, mappings, tmp_path: Path) -> None:
    jilin = await twins.start("jilin_imaging")
    record = example(specset, "hospital_pacs/exam_report")
    await delivered_before(jilin_bridge(twins, tmp_path, "first.db"), specset, mappings, tmp_path, record)
    jilin.twin.options.fail_every = 1  # every request answered 503 from now on
    rt = await left_in_doubt(jilin_bridge(twins, tmp_path, "journal.db"), specset, mappings, tmp_path, record)
    await rt.start()
    try:
        assert rt.journal is not None
        for _ in range(400):
            if requests(jilin, "queryFormerlyExam") >= 3:
                break
            await asyncio.sleep(0.05)
        (hit,) = await rt.journal.search(limit=2)
        m = await rt.journal.get(hit.id)
        assert m is not None and m.in_doubt and m.state in (State.ERROR, State.TRANSLATED)
        failed = [a for a in m.history if a.outcome == "retry"]
        assert len(failed) >= 2 and all(a.error and a.error.startswith("in doubt: queryFormerlyExam failed: ") for a in failed)
        assert requests(jilin, "savePatientExam") == 1  # the first bridge's delivery only: nothing resent while in doubt
        jilin.twin.options.fail_every = 0  # the platform answers again
        assert (await wait_done(rt, 1)).get("SENT") == 1
        m = await rt.journal.get(hit.id)
        assert m is not None and m.history[-1].outcome == "reconciled" and not m.in_doubt
        assert in_doubt_count(rt, "query_failed") >= 2 and in_doubt_count(rt, "reconciled") == 1
    finally:
        await rt.stop()
    assert list(jilin.stats()["deliveries"]["savePatientExam"].values()) == [1]


async def test_an_interface_that_cannot_be_asked_is_resent_and_says_so(twins, specset, mappings, tmp_path: Path) -> None:
    """xinjiang_mr's ArchiveAutoReport.exam declares no reconcile: at-least-once, visibly."""
    xinjiang = await twins.start("xinjiang_mr")
    record = example(specset, "hospital_pacs/exam_report")
    await delivered_before(exam_bridge(twins, tmp_path, "xinjiang_mr", "ArchiveAutoReport.exam", "first.db"), specset, mappings,
                           tmp_path, record)
    rt = await left_in_doubt(exam_bridge(twins, tmp_path, "xinjiang_mr", "ArchiveAutoReport.exam", "journal.db"), specset, mappings,
                             tmp_path, record)
    try:
        m = await settled(rt)
        assert [a.outcome for a in m.history] == ["in_doubt", "ok"]
        assert m.history[0].error is not None and m.history[0].error.startswith("in doubt: resent (")
        assert in_doubt_count(rt, "resent", "xinjiang_mr/ArchiveAutoReport.exam") == 1
    finally:
        await rt.stop()
    delivered = xinjiang.stats()["deliveries"]["ArchiveAutoReport.exam"]
    assert list(delivered.values()) == [2]  # the platform got it twice: the price of not being able to ask


async def test_a_send_with_no_answer_in_time_is_asked_about_before_it_goes_again(twins, specset, mappings, tmp_path: Path) -> None:
    """The platform stored the exam but answered too late: the timeout leaves the message in doubt, and the
    retry finds it on the platform instead of uploading it a second time."""
    jilin = await twins.start("jilin_imaging")
    bridge = exam_bridge(twins, tmp_path, "jilin_imaging", "savePatientExam", "journal.db")
    bridge = msgspec.structs.replace(bridge, targets={"t": msgspec.structs.replace(bridge.targets["t"], timeout_s=0.3)})
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        await rt.targets["t"].tokens.get()  # type: ignore[union-attr]  # the token first: only the upload is slow
        jilin.twin.options.answer_delay_s = 1.0  # stored at once, answered after the bridge gave up
        await rt.receive("pacs", example(specset, "hospital_pacs/exam_report"))
        for _ in range(200):
            if requests(jilin, "savePatientExam") >= 1:
                break
            await asyncio.sleep(0.02)
        jilin.twin.options.answer_delay_s = 0.0
        assert (await wait_done(rt, 1)).get("SENT") == 1
        assert rt.journal is not None
        (hit,) = await rt.journal.search(limit=2)
        m = await rt.journal.get(hit.id)
        assert m is not None
        assert [a.outcome for a in m.history] == ["retry", "reconciled"]
        assert m.history[0].error is not None and "no complete answer" in m.history[0].error
    finally:
        await rt.stop()
    assert list(jilin.stats()["deliveries"]["savePatientExam"].values()) == [1]  # uploaded once

"""End to end through real sockets: source records -> journal -> translation -> envelope -> twins."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.bridge.model import Route, RouteTarget, Source
from engine.journal import State
from tests.bridge.conftest import example, make_bridge, runtime_for


async def wait_done(rt, n: int, timeout: float = 20.0) -> dict[str, int]:
    """Until n messages are SENT or DEAD; returns counts by state."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        st = await rt.journal.stats()
        counts: dict[str, int] = {}
        for by_state in st.values():
            for s, c in by_state.items():
                counts[s] = counts.get(s, 0) + c
        if counts.get("SENT", 0) + counts.get("DEAD", 0) >= n or loop.time() > end:
            return counts
        await asyncio.sleep(0.05)


async def test_pacs_exam_to_jilin_with_token_and_sm2_and_to_xinjiang_over_soap(twins, specset, mappings, tmp_path: Path) -> None:
    jilin = await twins.start("jilin_imaging")
    xinjiang = await twins.start("xinjiang_mr")
    bridge = make_bridge(
        twins, tmp_path,
        sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
        routes=[Route(id="exams", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam"),
                                                     RouteTarget(target="xinjiang", interface="ArchiveAutoReport.exam")])],
        targets={"jilin": twins.target("jilin_imaging"), "xinjiang": twins.target("xinjiang_mr")},
    )
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        record = example(specset, "hospital_pacs/exam_report")
        ids = await rt.receive("pacs", record)
        assert len(ids) == 2
        counts = await wait_done(rt, 2)
        assert counts == {"SENT": 2}, [await rt.journal.get(i) for i in ids]
        js = jilin.stats()
        assert sum(js["deliveries"].get("savePatientExam", {}).values()) == 1
        assert js["tokens"]["issued_today"] == 1
        stored = jilin.twin.store.find("exams")  # the twin decrypted idCardNo with its private key
        assert stored[0].data["idCardNo"] == record["ID_CARD"]
        xs = xinjiang.stats()
        assert sum(xs["deliveries"].get("ArchiveAutoReport.exam", {}).values()) == 1
        # a re-sent record is not delivered twice
        again = await rt.receive("pacs", record)
        assert again == ids
        msg = await rt.journal.get(ids[0])
        assert msg is not None and msg.state is State.SENT and msg.history[-1].outcome == "ok"
    finally:
        await rt.stop()

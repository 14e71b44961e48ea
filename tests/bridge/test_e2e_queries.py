"""Queries through the bridge, end to end over real sockets: the HIS calls the bridge's HTTP API and waits
(`reply: sync`), the bridge asks the platform's twin (envelope, token, crypto) and answers with the
platform's reply translated back; LIS reports from a real SQLite view reach xinjiang_mr (SOAP, SM4 + SM2)
and come back through xinjiang's recognition queries."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from adapters.base import InboundMessage
from adapters.server import start_app
from engine.bridge.model import Bridge, Route, RouteTarget, Source, Target
from engine.demo import build_hospital
from engine.journal import Incoming, State
from engine.runtime.bridge import BridgeRuntime
from engine.runtime.config import check_bridge
from engine.runtime.query import CALLER_GONE
from engine.runtime.serve import Running, start_sources
from tests.bridge.conftest import example, make_bridge, runtime_for

HIS_QUERY = "hospital_his/recognition_query"
HIS_PATH = "/his/mr/recognition-query"
CITY_ENVELOPE = {"authoritytype": "2", "signtype": "0", "secrettype": "1", "heartbeat": "0", "testmarker": "1", "elementsVersion": "1.00"}


def his_source() -> Source:
    return Source(adapter="http_json", spec=HIS_QUERY, settings={"port": 0})


def query_route(rid: str, source: str, target: str, interface: str, **kw: Any) -> Route:
    return Route(id=rid, source=source, reply="sync", to=[RouteTarget(target=target, interface=interface)], **kw)


def his_to_city(twins: Any, tmp: Path, *, envelope: bool = True) -> Bridge:
    """The HIS asking city_lab_mr HR01 on a sync route (with the platform's header envelope unless told not to)."""
    target = twins.target("city_lab_mr", headers=CITY_ENVELOPE) if envelope else twins.target("city_lab_mr")
    return make_bridge(twins, tmp, sources={"his": his_source()}, routes=[query_route("q", "his", "city", "HR01")],
                       targets={"city": target})


@asynccontextmanager
async def running(bridge: Bridge, specset, mappings, tmp: Path) -> AsyncIterator[Running]:
    assert check_bridge(bridge, specset, "test", mappings) == []
    rt = await runtime_for(bridge, specset, mappings, tmp)
    run = Running(rt, await start_sources(rt, tmp))
    try:
        yield run
    finally:
        await run.stop()


async def ask(run: Running, source: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The HIS's call: POST to the bridge's API and wait for the answer."""
    port = run.sources[source].port
    async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}{HIS_PATH}", json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def messages(rt: BridgeRuntime, interface: str) -> list[Any]:
    assert rt.journal is not None
    hits = await rt.journal.search(interface=interface, newest_first=False, limit=100)
    return [await rt.journal.get(h.id) for h in hits]


async def until(pred: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await pred():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)


# -- city_lab_mr HR01: header envelope, token, SM4 envelope ------------------------------------------------
async def test_his_query_is_answered_by_city_hr01_with_its_envelope_and_token(twins, specset, mappings, tmp_path: Path) -> None:
    city = await twins.start("city_lab_mr")
    bridge = his_to_city(twins, tmp_path)
    body = example(specset, HIS_QUERY)
    async with running(bridge, specset, mappings, tmp_path) as run:
        status, answer = await ask(run, "his", body)
        assert status == 200
        assert answer == {"code": "0", "message": "成功", "FOUND": False}  # the twin's store holds no lab report
        stats = city.stats()
        assert stats["requests"]["HR01"] == 1 and stats["tokens"]["issued_today"] == 1 and not stats["errors"]
        [m] = await messages(run.runtime, "city_lab_mr/HR01")
        assert m.state is State.SENT and m.route == "q" and m.key == "457759922|MZ20240311001|P000187"
        [att] = m.history
        assert att.outcome == "ok" and att.code == "1000" and att.request.startswith("POST /pmemr/productMutualRecognition/getCrossUrl")
        assert att.body and "QAK" not in att.body and base64.b64decode(att.body, validate=True)  # the answer travelled SM4-encrypted

        # asked again (the doctor reopens the patient): one journal message, asked twice, answered twice, one token
        status, again = await ask(run, "his", body)
        assert (status, again) == (200, answer)
        [m] = await messages(run.runtime, "city_lab_mr/HR01")
        assert m.state is State.SENT and [a.outcome for a in m.history] == ["ok", "ok"]
        assert city.stats()["requests"]["HR01"] == 2 and city.stats()["tokens"]["issued_today"] == 1


async def test_a_query_the_platform_refuses_gets_the_platforms_reason_and_goes_dead(twins, specset, mappings, tmp_path: Path) -> None:
    await twins.start("city_lab_mr")
    bridge = his_to_city(twins, tmp_path, envelope=False)  # no envelope headers: the twin refuses
    async with running(bridge, specset, mappings, tmp_path) as run:
        status, answer = await ask(run, "his", example(specset, HIS_QUERY))
        assert status == 200 and answer["code"] == "502", answer
        assert answer["message"].startswith("city_lab_mr/HR01 answered: ")
        [m] = await messages(run.runtime, "city_lab_mr/HR01")
        assert m.state is State.DEAD and m.last_error.startswith("query: ") and "not retried" in m.last_error
        assert m.history[-1].outcome == "fatal"


async def test_invalid_query_is_refused_without_a_call_and_journalled_dead(twins, specset, mappings, tmp_path: Path) -> None:
    city = await twins.start("city_lab_mr")
    bridge = his_to_city(twins, tmp_path)
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        body = {k: v for k, v in example(specset, HIS_QUERY).items() if k != "CLIENT_MAC"}  # past the HIS's own check
        reply = await rt.sink_for("his")(InboundMessage(HIS_QUERY, body))
        answer = msgspec.json.decode(reply.body)
        assert answer["code"] == "400" and "messages.PV1.computerMac" in answer["message"]
        [m] = await messages(rt, "city_lab_mr/HR01")
        assert m.state is State.DEAD and m.last_error.startswith("invalid for city_lab_mr/HR01")
        assert city.stats()["requests"].get("HR01", 0) == 0
    finally:
        await rt.stop()


async def test_a_platform_that_does_not_answer_in_time_gets_the_caller_a_timeout_answer(specset, mappings, twins, tmp_path: Path) -> None:
    release = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner, port = await start_app(app, "127.0.0.1", 0)
    await twins.start("city_lab_mr")  # its client keys only
    target = twins.target("city_lab_mr", headers=CITY_ENVELOPE)
    target.base_url = f"http://127.0.0.1:{port}"
    bridge = make_bridge(twins, tmp_path, sources={"his": his_source()},
                         routes=[query_route("q", "his", "city", "HR01", reply_timeout_s=0.3)], targets={"city": target})
    try:
        async with running(bridge, specset, mappings, tmp_path) as run:
            status, answer = await ask(run, "his", example(specset, HIS_QUERY))
            assert status == 200 and answer == {"code": "504", "message": "city_lab_mr/HR01 did not answer within 0.3 s"}
            [m] = await messages(run.runtime, "city_lab_mr/HR01")
            assert m.state is State.DEAD and "did not answer within 0.3 s" in m.last_error
            assert [a.outcome for a in m.history] == ["timeout"]
    finally:
        release.set()
        await runner.cleanup()


async def test_a_query_left_by_a_dead_holder_is_not_sent_later(twins, specset, mappings, tmp_path: Path) -> None:
    city = await twins.start("city_lab_mr")
    bridge = his_to_city(twins, tmp_path)
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        assert rt.journal is not None
        # what a bridge killed mid-query leaves: a held query whose lease has run out
        receipt, lease = await rt.journal.receive_held(Incoming("city_lab_mr/HR01", "city", b"{}", "k", "q"), lease_s=0.0)
        assert lease is not None
        rt.wake("city")
        await until(lambda: _state(rt, receipt.id, State.DEAD))
        m = await rt.journal.get(receipt.id)
        assert m is not None and m.last_error == CALLER_GONE
        assert city.stats()["requests"].get("HR01", 0) == 0
    finally:
        await rt.stop()


async def _state(rt: BridgeRuntime, mid: int, state: State) -> bool:
    assert rt.journal is not None
    m = await rt.journal.get(mid)
    return m is not None and m.state is state


def test_check_bridge_refuses_query_routes_it_cannot_answer(specset, mappings) -> None:
    targets = {"city": Target(platform="city_lab_mr", base_url="http://127.0.0.1:9"),
               "xinjiang": Target(platform="xinjiang_mr", base_url="http://127.0.0.1:9")}
    bridge = Bridge(id="b", sources={"his": his_source(), "lis": Source(adapter="dbview", spec="hospital_lis/lab_report")},
                    targets=targets, routes=[
                        Route(id="two", source="his", reply="sync", to=[RouteTarget(target="city", interface="HR01"),
                                                                       RouteTarget(target="city", interface="HR02")]),
                        query_route("view", "lis", "xinjiang", "GetCheckLabList"),
                        query_route("nochain", "his", "xinjiang", "ExistsReCureInfo"),
                    ])
    found = [f.message for f in check_bridge(bridge, specset, "bridge.yaml", mappings)]
    assert "route `two`: reply: sync sends each query to exactly one target, unconditionally (found 2 in `to`)" in found
    assert any(m.startswith("route `two`: reply: sync: source `his` gets one answer per call, so it cannot also feed nochain")
               for m in found)
    assert "route `view`: reply: sync needs a source that waits for an answer (http_json), not dbview `lis`" in found
    assert any(m.startswith("route `nochain`: reply: sync needs a mapping chain from hospital_his/recognition_query to "
                            "xinjiang_mr/ExistsReCureInfo and from the xinjiang_mr/ExistsReCureInfo response") for m in found)


# -- xinjiang_mr: LIS view in, recognition queries back (SOAP, SM4 + SM2) --------------------------------------
async def test_lis_reports_reach_xinjiang_and_come_back_through_its_queries(twins, specset, mappings, tmp_path: Path) -> None:
    xinjiang = await twins.start("xinjiang_mr")
    data = build_hospital(tmp_path / "hospital", patients=4)
    lis = Source(adapter="dbview", spec="hospital_lis/lab_report",
                 settings={"database": str(data.database), "state": str(tmp_path / "lis.cursor.db"), "interval_s": 0.1,
                           "group_by": ["REPORT_NO"]})
    bridge = make_bridge(twins, tmp_path, sources={"lis": lis, "his_list": his_source(), "his_info": his_source()},
                         routes=[Route(id="labs", source="lis", to=[RouteTarget(target="xinjiang", interface="ArchiveAutoReport.lab")]),
                                 query_route("recent", "his_list", "xinjiang", "GetCheckLabList"),
                                 query_route("details", "his_info", "xinjiang", "GetCheckLabInfo")],
                         targets={"xinjiang": twins.target("xinjiang_mr")})
    async with running(bridge, specset, mappings, tmp_path) as run:
        rt = run.runtime

        async def uploaded() -> bool:
            return sum(1 for m in await messages(rt, "xinjiang_mr/ArchiveAutoReport.lab") if m.state is State.SENT) == len(data.lab_reports)

        await until(uploaded)
        assert xinjiang.stats()["records"]["lab_reports"] == len(data.lab_reports)  # the twin decrypted and stored them

        with_reports = {rows[0]["PATIENT_ID"] for rows in data.lab_reports}
        assert 0 < len(with_reports) < len(data.patients)  # patients with reports, and one without
        for patient, query in zip(data.patients, data.recognition_queries, strict=True):
            reports = [rows for rows in data.lab_reports if rows[0]["PATIENT_ID"] == patient.patient_id]
            status, recent = await ask(run, "his_list", query)  # GetCheckLabList: one item per lab report
            assert status == 200 and recent["code"] == "0", recent
            assert recent["FOUND"] is bool(reports) and len(recent.get("REPORTS", [])) == len(reports)
            assert sorted(r["ITEM_NAME"] for r in recent.get("REPORTS", [])) == sorted(rows[0]["CATEGORY"] for rows in reports)
            assert all(r["KIND"] == "检验" and r["REPORT_URL"].startswith("http://twin.invalid/report/") for r in recent.get("REPORTS", []))

            status, details = await ask(run, "his_info", query)  # GetCheckLabInfo: the reports with their lines
            assert status == 200 and details["code"] == "0", details
            assert details["FOUND"] is bool(reports)
            got = {r["REPORT_NO"]: r for r in details.get("REPORTS", [])}
            assert set(got) == {rows[0]["REPORT_NO"] for rows in reports}
            for rows in reports:
                report = got[rows[0]["REPORT_NO"]]
                assert (report["KIND"], report["VISIT_NO"], report["ORG_CODE"], report["TITLE"]) == (
                    "检验", patient.visit_no, rows[0]["ORG_CODE"], rows[0]["GROUP_NAME"])
                assert report["RECOGNIZABLE"] is any(row["RECOGNIZABLE"] == "1" for row in rows)
                assert sorted((r["ITEM_NAME"], r["RESULT"], r.get("UNIT"), r["RECOGNIZABLE"]) for r in report["RESULTS"]) == sorted(
                    (row["ITEM_NAME"], row["RESULT"], row["UNIT"], row["RECOGNIZABLE"] == "1") for row in rows)

        for interface in ("xinjiang_mr/GetCheckLabList", "xinjiang_mr/GetCheckLabInfo"):
            queries = await messages(rt, interface)
            assert len(queries) == len(data.patients) and all(m.state is State.SENT for m in queries)
            for m in queries:  # what went over the wire was SM4 ciphertext (Base64), the key SM2-wrapped
                assert m.history[-1].request.startswith("SOAP ") and m.history[-1].outcome == "ok"
                wire = m.history[-1].body or ""
                assert wire and "<root" not in wire and base64.b64decode(wire, validate=True)
        assert xinjiang.stats()["requests"]["GetCheckLabInfo"] == len(data.patients)

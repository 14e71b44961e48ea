"""HTTP JSON inbound routes from specs, the spec-driven error reply, and the outbound client."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import unquote

import aiohttp
import msgspec
import pytest
from examples import example

from adapters.base import InboundMessage, OutboundRequest, Reply, TransportError
from adapters.http_json import HttpOutbound
from adapters.http_limits import Limits
from adapters.reply import ReplyBuilder
from engine.spec.sample import sample

JSON = "application/json; charset=utf-8"


def _body(reply: Reply) -> object:
    return json.loads(reply.body)


# -- the reply builder: one generic builder, each platform's own error format -------------------
def test_reply_builder_speaks_each_platforms_format(specs) -> None:
    jilin = ReplyBuilder(specs.interface("jilin_imaging/savePatientExam")).error("hospitalCode is required")
    assert _body(jilin) == {"code": 400, "msg": "hospitalCode is required"}
    pe = ReplyBuilder(specs.interface("pe_system/lis_getApplyInfo")).error("BarCode is required")
    assert _body(pe) == {"status": -1, "message": "BarCode is required"}
    wd = ReplyBuilder(specs.interface("wedoctor_supervision/A1000")).error("data is required")
    assert _body(wd) == {"code": "SYSTEM_ERROR", "message": "data is required"}
    city = ReplyBuilder(specs.interface("city_lab_mr/HR01")).error("headers.authoritytype is required")
    assert city.headers["messagecode"] == "1101" and unquote(city.headers["messagetext"]) == "headers.authoritytype is required"
    xj = ReplyBuilder(specs.interface("xinjiang_mr/DeleteLabInfo")).error("strFilter is required")
    assert xj.body.decode() == "error:strFilter is required" and xj.content_type.startswith("text/plain")


def test_reply_builder_internal_errors_use_the_retry_code(specs) -> None:
    assert _body(ReplyBuilder(specs.interface("jilin_imaging/savePatientExam")).error("x", kind="internal"))["code"] == 503
    city = ReplyBuilder(specs.interface("city_lab_mr/HR01")).error("x", kind="internal")
    assert city.headers["messagecode"] == "1103"


# -- inbound ------------------------------------------------------------------------------------
async def test_valid_jilin_request_reaches_the_sink_with_its_headers(serve, specs) -> None:
    inb, rec = await serve("jilin_imaging")
    iface = specs.interface("jilin_imaging/savePatientExam")
    raw = msgspec.json.encode(sample(iface.request.node, full=True))
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{inb.port}/interface/savePatientExam"
        async with s.post(url, data=raw, headers={"Content-Type": JSON, "X-Token": "t0ken"}) as r:
            assert r.status == 200 and await r.json() == {"code": 200, "msg": "ok"}
    [msg] = rec.messages
    assert msg.interface == "jilin_imaging/savePatientExam" and msg.body == raw
    assert msg.headers["X-Token"] == "t0ken" and msg.meta["path"] == "/interface/savePatientExam"


async def test_invalid_jilin_request_is_answered_in_jilin_format_naming_the_field(serve, specs) -> None:
    inb, rec = await serve("jilin_imaging")
    body, _ = example(specs.interface("jilin_imaging/savePatientExam"))
    del body["hospitalCode"]
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{inb.port}/interface/savePatientExam"
        async with s.post(url, json=body) as r:  # no X-Token either
            got = await r.json()
    assert r.status == 200 and got["code"] == 400
    assert "hospitalCode is required" in got["msg"] and "headers.X-Token is required" in got["msg"]
    assert rec.messages == []


async def test_not_json_is_refused_with_a_reason(serve) -> None:
    inb, rec = await serve("jilin_imaging")
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{inb.port}/interface/savePatientExam"
        async with s.post(url, data=b'{"hospitalCode": ', headers={"X-Token": "t"}) as r:
            got = await r.json()
    assert got["code"] == 400 and "not valid JSON" in got["msg"] and rec.messages == []


async def test_city_lab_envelope_in_headers(serve, specs) -> None:
    inb, rec = await serve("city_lab_mr")
    body, headers = example(specs.interface("city_lab_mr/HR01"))
    url = f"http://127.0.0.1:{inb.port}/pmemr/productMutualRecognition/getCrossUrl"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers=headers) as r:
            assert r.status == 200
        bad = {k: v for k, v in headers.items() if k != "authoritytype"}
        async with s.post(url, json=body, headers=bad) as r:
            assert r.headers["messagecode"] == "1101"
            assert "headers.authoritytype is required" in unquote(r.headers["messagetext"])
    assert [m.interface for m in rec.messages] == ["city_lab_mr/HR01"]
    assert rec.messages[0].headers["access_token"] == "xxxx"


async def test_wedoctor_fixed_service_header_is_required(serve, specs) -> None:
    inb, rec = await serve("wedoctor_supervision")
    body, headers = example(specs.interface("wedoctor_supervision/A1000"))
    url = f"http://127.0.0.1:{inb.port}/ihs/api/base/hospital"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers=headers) as r:
            assert r.status == 200
        async with s.post(url, json=body, headers={**headers, "service": "A1001"}) as r:
            got = await r.json()
    assert got["code"] == "SYSTEM_ERROR" and "headers.service must be 'A1000'" in got["message"]
    assert len(rec.messages) == 1


async def test_one_path_two_interfaces_told_apart_by_fixed_header(serve) -> None:
    inb, rec = await serve("demo_http")
    url = f"http://127.0.0.1:{inb.port}/api/save"
    token = {"X-Token": "t"}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"name": "a", "age": 3}, headers={**token, "service": "S1"}) as r:
            assert r.status == 200
        async with s.post(url, json={"title": "x"}, headers={**token, "service": "S2"}) as r:
            assert r.status == 200
        async with s.post(url, json={"name": "toolongname", "age": -1}, headers={**token, "service": "S1"}) as r:
            got = await r.json()
    assert [m.interface for m in rec.messages] == ["demo_http/save", "demo_http/save2"]
    assert got["code"] == 400 and "name: 11 characters, at most 8" in got["msg"] and "age" in got["msg"]


async def test_sink_failure_is_an_internal_error_without_traceback(serve) -> None:
    async def broken(msg: InboundMessage) -> Reply:
        raise RuntimeError("database on fire")

    inb, _ = await serve("demo_http")
    await inb.stop()
    await inb.start(broken)
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{inb.port}/api/save"
        async with s.post(url, json={"name": "a"}, headers={"X-Token": "t", "service": "S1"}) as r:
            assert r.status == 500
            got = await r.json()
    assert got == {"code": 503, "msg": "internal error while handling the request"}


# -- outbound -----------------------------------------------------------------------------------
async def test_outbound_client_posts_to_our_server_with_fixed_headers(serve, specs) -> None:
    inb, rec = await serve("wedoctor_supervision", reply=Reply(b'{"code": "0"}'))
    body, headers = example(specs.interface("wedoctor_supervision/A1000"))
    headers.pop("service")
    out = HttpOutbound(specs.platforms["wedoctor_supervision"], f"http://127.0.0.1:{inb.port}")
    try:
        for _ in range(3):  # pooled: one session serves them all
            resp = await out.send(OutboundRequest("wedoctor_supervision/A1000", msgspec.json.encode(body), headers))
            assert resp.status == 200 and json.loads(resp.body) == {"code": "0"}
        assert len(out.pool._sessions) == 1
    finally:
        await out.close()
    assert [m.headers["service"] for m in rec.messages] == ["A1000"] * 3


async def test_outbound_transport_errors(serve, specs) -> None:
    async def slow(msg: InboundMessage) -> Reply:
        await asyncio.sleep(0.5)
        return Reply(b"{}")

    inb, _ = await serve("demo_http", reply=Reply(b"x" * 5000))
    ps = specs.platforms["jilin_imaging"]
    closed = HttpOutbound(ps, "http://127.0.0.1:9")  # nothing listens on the discard port
    small = HttpOutbound(ps, f"http://127.0.0.1:{inb.port}", limits=Limits(max_response_bytes=100))
    try:
        with pytest.raises(TransportError, match="ClientConnectorError"):
            await closed.send(OutboundRequest("jilin_imaging/getToken", b"{}"))
        fixture = HttpOutbound(inb.platform, f"http://127.0.0.1:{inb.port}", limits=Limits(max_response_bytes=100))
        with pytest.raises(TransportError, match="exceeds the limit of 100 bytes"):
            await fixture.send(OutboundRequest("demo_http/save", b'{"name": "a"}', {"X-Token": "t"}))
        await fixture.close()
        await inb.stop()
        await inb.start(slow)
        fixture = HttpOutbound(inb.platform, f"http://127.0.0.1:{inb.port}")
        with pytest.raises(TransportError, match=r"no complete answer within 0\.2 s"):
            await fixture.send(OutboundRequest("demo_http/save", b'{"name": "a"}', {"X-Token": "t"}, timeout_s=0.2))
        await fixture.close()
    finally:
        await closed.close()
        await small.close()

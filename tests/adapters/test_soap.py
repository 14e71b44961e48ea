"""SOAP: envelopes (sans I/O), the generated WSDL, dispatch by `select`, zeep and our client as peers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import zeep
from examples import example
from lxml import etree

from adapters.base import InboundMessage, OutboundRequest, Reply
from adapters.soap import SoapOutbound
from adapters.soap_dispatch import NoMatch, choose, validate
from adapters.soap_envelope import SoapFault, build_call, build_fault, build_result, parse_call, parse_result
from adapters.wsdl import namespace_of, render_wsdl, soap_service
from engine.spec.sample import sample
from engine.spec.xmlsafe import obj_to_xml, to_bytes

NS = "http://demo.example/ws/"


# -- envelopes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_call_and_result_round_trip(version: str) -> None:
    raw = build_call(version, NS, "Archive", {"strReport": "<root><a>1 & 2</a></root>", "strKey": ""})  # type: ignore[arg-type]
    call = parse_call(raw)
    assert (call.version, call.operation, call.namespace) == (version, "Archive", NS)
    assert call.params == {"strReport": "<root><a>1 & 2</a></root>", "strKey": ""}
    assert parse_result(build_result(version, NS, "Archive", "ArchiveResult", "ok:张三"), "Archive") == "ok:张三"  # type: ignore[arg-type]


@pytest.mark.parametrize(("version", "code"), [("1.1", "Client"), ("1.2", "Sender")])
def test_faults_round_trip(version: str, code: str) -> None:
    raw = build_fault(SoapFault("strReport is required", version=version))  # type: ignore[arg-type]
    with pytest.raises(SoapFault) as exc:
        parse_result(raw, "Archive")
    assert (exc.value.code, exc.value.reason, exc.value.sender) == (code, "strReport is required", True)


def test_not_an_envelope_and_doctype_are_faults() -> None:
    with pytest.raises(SoapFault, match=r"expected a SOAP 1\.1 or 1\.2 Envelope, found <Archive>"):
        parse_call(b"<Archive/>")
    with pytest.raises(SoapFault, match="DOCTYPE is refused"):
        parse_call(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')


# -- WSDL and dispatch --------------------------------------------------------------------------
def test_wsdl_has_each_operation_both_bindings_and_string_params(fixture_specs) -> None:
    svc = soap_service(fixture_specs.platforms["demo_soap"])
    wsdl = render_wsdl(svc, "http://127.0.0.1:1/Demo").encode()
    root = etree.fromstring(wsdl)
    names = {e.get("name") for e in root.iter("{http://www.w3.org/2001/XMLSchema}element") if e.get("type") == "s:string"}
    assert {"strReport", "strKey", "strText", "ArchiveResult", "PingResult"} <= names
    bindings = [b.get("name") for b in root.iter("{http://schemas.xmlsoap.org/wsdl/}binding")]
    assert bindings == ["DemoSoap", "DemoSoap12"] and namespace_of(wsdl) == NS
    assert [o.name for o in svc.operations.values()] == ["Archive", "Ping"]


def test_select_by_xpath_inside_a_carried_payload(fixture_specs) -> None:
    svc = soap_service(fixture_specs.platforms["demo_soap"])
    op = svc.operations["Archive"]
    assert choose(op, {"strReport": '<root><exammaster><item id="1"/></exammaster></root>'}).id == "Archive.exam"
    assert choose(op, {"strReport": '<root><labmaster><item id="1"/></labmaster></root>'}).id == "Archive.lab"
    with pytest.raises(NoMatch, match="strReport holds <root> with <daily>"):
        choose(op, {"strReport": "<root><daily/></root>"})
    with pytest.raises(NoMatch, match="strReport: malformed XML"):
        choose(op, {"strReport": "<root><labmaster>"})
    lab = op.interfaces[1]
    errs = validate(svc, lab, {"strReport": '<root><labmaster><item id="12345"/></labmaster></root>'}, plaintext=True)
    assert [(e.path, e.rule) for e in errs] == [("strReport.labmaster[0].id", "length")]


def test_select_by_a_value_inside_msg_header(specs) -> None:
    svc = soap_service(specs.platforms["pe_system"], common_groups=specs.common_groups)
    op = svc.operations["CallInterface"]
    header = "<root><serverName>pacs_pubReport</serverName><certificate>c</certificate></root>"
    assert choose(op, {"msgHeader": header, "msgBody": "<root/>"}).id == "pacs_pubReport"
    with pytest.raises(NoMatch, match=r"msgHeader\.serverName = 'nope'"):
        choose(op, {"msgHeader": "<root><serverName>nope</serverName></root>", "msgBody": "<root/>"})


# -- acceptance: zeep against the WSDL we serve ---------------------------------------------------
def xinjiang_calls(specs) -> list[tuple[str, str, dict[str, str]]]:
    svc = soap_service(specs.platforms["xinjiang_mr"])
    return [(op.name, i.qualified_id, example(i)[0]) for op in svc.operations.values() for i in op.interfaces]


def pe_call(iface: Any) -> dict[str, str]:
    header = {"serverName": iface.id, "callOperator": "", "certificate": "cert-1", "sendTime": "2024-03-18 17:05:09", "sendCount": "0"}
    try:
        body = example(iface)[0]
    except LookupError:
        body = sample(iface.request.node, full=False)
    return {"msgHeader": to_bytes(obj_to_xml("root", header, None)).decode(),
            "msgBody": to_bytes(obj_to_xml("root", body, iface.request.node)).decode()}  # fmt: skip


async def test_zeep_calls_each_xinjiang_operation_over_soap_11_and_12(serve, specs) -> None:
    inb, rec = await serve("xinjiang_mr", reply=Reply(b"ok"))
    url = f"http://127.0.0.1:{inb.port}/Myhealth?wsdl"
    calls = xinjiang_calls(specs)

    def run() -> list[str]:
        client = zeep.Client(url)
        out = []
        for port in ("MyhealthSoap", "MyhealthSoap12"):
            svc = client.bind("Myhealth", port)
            out += [getattr(svc, op)(**params) for op, _, params in calls]
        return out

    results = await asyncio.to_thread(run)
    assert results == ["ok"] * 2 * len(calls)
    got = [m.interface for m in rec.messages]
    assert got == [iid for _, iid, _ in calls] * 2
    assert {"xinjiang_mr/ArchiveAutoReport.lab", "xinjiang_mr/ArchiveAutoReport.exam", "xinjiang_mr/ArchiveAutoReport.daily"} <= set(got)
    assert len({op for op, _, _ in calls}) == 10
    assert [m.meta["soap_version"] for m in rec.messages] == ["1.1"] * len(calls) + ["1.2"] * len(calls)


async def test_zeep_calls_pe_system_call_interface_for_each_service(serve, specs) -> None:
    inb, rec = await serve("pe_system", reply=Reply(b'{"status": 0, "message": ""}'))
    ps = specs.platforms["pe_system"]
    ifaces = [i for i in ps.interfaces.values() if i.spec.binding and i.spec.binding.soap]
    url = f"http://127.0.0.1:{inb.port}/services/WSInterface?wsdl"

    def run() -> list[str]:
        svc = zeep.Client(url).service
        return [svc.CallInterface(**pe_call(i)) for i in ifaces]

    results = await asyncio.to_thread(run)
    assert results == ['{"status": 0, "message": ""}'] * len(ifaces)
    assert [m.interface for m in rec.messages] == [i.qualified_id for i in ifaces]


async def test_bad_payload_gets_the_platforms_error_string_naming_the_field(serve, specs) -> None:
    inb, rec = await serve("xinjiang_mr", reply=Reply(b"ok"))
    params = example(specs.interface("xinjiang_mr/DeleteLabInfo"))[0]
    params["strFilter"] = params["strFilter"].replace("<org_code>", "<org_codex>").replace("</org_code>", "</org_codex>")

    def run() -> str:
        return zeep.Client(f"http://127.0.0.1:{inb.port}/Myhealth?wsdl").service.DeleteLabInfo(**params)

    result = await asyncio.to_thread(run)
    assert result.startswith("error:") and "strFilter.org_code is required" in result and "strFilter.org_codex" in result
    assert rec.messages == []


async def test_pe_system_bad_header_is_refused_naming_it(serve, specs) -> None:
    inb, _ = await serve("pe_system")
    out = SoapOutbound(specs.platforms["pe_system"], f"http://127.0.0.1:{inb.port}/services/WSInterface")
    params = pe_call(specs.interface("pe_system/lis_getApplyInfo"))
    params["msgHeader"] = params["msgHeader"].replace("2024-03-18 17:05:09", "2024/03/18")
    try:
        resp = await out.send(OutboundRequest("pe_system/lis_getApplyInfo", b"", params=params))
    finally:
        await out.close()
    assert resp.body.decode().startswith("error:") and "msgHeader.sendTime" in resp.body.decode()


# -- our client against our server ------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_our_client_calls_our_server(serve, specs, version: str) -> None:
    inb, rec = await serve("xinjiang_mr", reply=Reply("ok:已引用".encode()))
    out = SoapOutbound(specs.platforms["xinjiang_mr"], f"http://127.0.0.1:{inb.port}/Myhealth", version=version)  # type: ignore[arg-type]
    try:
        await out.discover()
        for iid in ("ArchiveAutoReport.exam", "DeleteExamInfo", "GetCheckLabInfo"):
            params = example(specs.interface(f"xinjiang_mr/{iid}"))[0]
            resp = await out.send(OutboundRequest(f"xinjiang_mr/{iid}", b"", params=params))
            assert (resp.status, resp.body.decode()) == (200, "ok:已引用")
    finally:
        await out.close()
    assert [m.interface for m in rec.messages] == ["xinjiang_mr/ArchiveAutoReport.exam", "xinjiang_mr/DeleteExamInfo",
                                                   "xinjiang_mr/GetCheckLabInfo"]  # fmt: skip
    assert rec.messages[0].body == example(specs.interface("xinjiang_mr/ArchiveAutoReport.exam"))[0]


async def test_a_failing_sink_is_a_receiver_fault(serve, specs) -> None:
    async def down(msg: InboundMessage) -> Reply:
        return Reply("数据库不可用".encode(), status=503)

    inb, _ = await serve("xinjiang_mr")
    await inb.stop()
    await inb.start(down)
    out = SoapOutbound(specs.platforms["xinjiang_mr"], f"http://127.0.0.1:{inb.port}/Myhealth", version="1.2")
    try:
        params = example(specs.interface("xinjiang_mr/DeleteLabInfo"))[0]
        resp = await out.send(OutboundRequest("xinjiang_mr/DeleteLabInfo", b"", params=params))
    finally:
        await out.close()
    assert resp.status == 500 and resp.headers["X-Soap-Fault"] == "Receiver" and resp.body.decode() == "数据库不可用"


async def test_unknown_operation_and_plain_get(serve) -> None:
    inb, _ = await serve("demo_soap")
    url = f"http://127.0.0.1:{inb.port}/Demo"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=build_call("1.1", NS, "Nope", {}), headers={"Content-Type": "text/xml"}) as r:
            assert r.status == 500 and "unknown operation Nope of Demo (known: Archive, Ping)" in await r.text()
        async with s.get(url) as r:
            assert r.status == 404


async def test_unwrap_hook_gives_selection_and_validation_the_plaintext(serve) -> None:
    """The runtime's crypto plugs in as `unwrap`; here base64 stands in for SM4."""
    import base64

    async def unwrap(operation: str, params: dict[str, str]) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() if k == "strReport" else v for k, v in params.items()}

    inb, rec = await serve("demo_soap", unwrap=unwrap, reply=Reply(b"ok"))
    plain = '<root><exammaster><item id="7"/></exammaster></root>'
    wire = {"strReport": base64.b64encode(plain.encode()).decode(), "strKey": "k"}
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{inb.port}/Demo"
        async with s.post(url, data=build_call("1.1", NS, "Archive", wire), headers={"Content-Type": "text/xml"}) as r:
            assert "<tns:ArchiveResult>ok</tns:ArchiveResult>" in await r.text()
    [msg] = rec.messages
    assert msg.interface == "demo_soap/Archive.exam" and msg.body == wire and msg.meta["plaintext"]["strReport"] == plain

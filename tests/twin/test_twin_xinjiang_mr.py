"""xinjiang_mr twin: SOAP Myhealth with SM4-ECB payloads and an SM2-wrapped key. Lab reports registered
through ArchiveAutoReport answer GetCheckLabList / GetCheckLabInfo / ExistsReCureInfo; a voided report is
gone; zeep calls the twin from its own WSDL."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import zeep
from lxml import etree
from twinhelp import client, example

from adapters.soap_envelope import build_call, parse_result
from adapters.wsdl import soap_service
from engine.spec import SpecSet
from engine.twin import RunningTwin, start_twin

PATIENT = "<root><id_no>身份证号</id_no><id_type>01</id_type></root>"


async def call(http: aiohttp.ClientSession, t: RunningTwin, op: str, params: dict[str, str], *, seal: bool = True) -> str:
    cp = client(t) if seal else None
    session = None
    if cp is not None:
        sealed = cp.seal_request(b"", {}, params)
        params, session = sealed.params, sealed.session
    ns = soap_service(t.twin.ps).namespace
    soap_url = t.soap_url()
    assert soap_url is not None
    async with http.post(soap_url, data=build_call("1.1", ns, op, params), headers={"Content-Type": "text/xml; charset=utf-8"}) as r:
        text = parse_result(await r.read(), op)
    return cp.open_response(text.encode(), {}, session=session).body.decode() if cp is not None else text


def lab(specs: SpecSet) -> dict[str, Any]:
    return dict(example(specs, "xinjiang_mr/ArchiveAutoReport.lab"))


def cred(specs: SpecSet) -> str:
    return lab(specs)["strCredential"]


async def test_register_query_void(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "xinjiang_mr") as t:
        assert await call(http, t, "ArchiveAutoReport", lab(specs)) == "ok"
        listed = etree.fromstring((await call(http, t, "GetCheckLabList", {"strFilter": PATIENT, "strCredential": cred(specs)})).encode())
        assert [(i.get("type"), i.get("item_code")) for i in listed] == [("lab", "A01")]
        info = etree.fromstring((await call(http, t, "GetCheckLabInfo", {"strFilter": PATIENT, "strCredential": cred(specs)})).encode())
        assert [i.get("report_form_no") for i in info.iterfind("labmaster/item")] == ["14437173"]
        assert sorted(i.get("serial_no") for i in info.iterfind("lab_subitem/item")) == ["46530131", "46530132"]
        void = dict(example(specs, "xinjiang_mr/DeleteLabInfo"))
        assert await call(http, t, "DeleteLabInfo", void) == "ok"
        assert await call(http, t, "DeleteLabInfo", void) == "error:报告不存在"
        gone = await call(http, t, "GetCheckLabList", {"strFilter": PATIENT, "strCredential": cred(specs)})
        assert etree.fromstring(gone.encode()).tag == "root" and len(etree.fromstring(gone.encode())) == 0
        stats = t.stats()
        assert stats["delivered"] == {"ArchiveAutoReport.lab": 1, "DeleteLabInfo": 1}
        assert stats["reply_errors"] == {}


async def test_recognition_answers_from_uploaded_reports(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "xinjiang_mr") as t:
        assert await call(http, t, "ArchiveAutoReport", lab(specs)) == "ok"
        ordered = ('<root id_no="身份证号" id_type="01" dept_code="1"><lab><item>250301002</item><item>AG</item></lab></root>')
        got = etree.fromstring((await call(http, t, "ExistsReCureInfo", {"strFilter": ordered, "strCredential": cred(specs)})).encode())
        masters = got.findall("labmaster")
        assert [m.get("report_form_no") for m in masters] == ["14437173"]
        assert [i.get("item_code") for i in masters[0].findall("item")] == ["250301002"], "AG is not recognizable (recognition 0)"
        other = ordered.replace("250301002", "999")
        none = etree.fromstring((await call(http, t, "ExistsReCureInfo", {"strFilter": other, "strCredential": cred(specs)})).encode())
        assert len(none) == 0


async def test_invalid_payload_gets_error_naming_the_field(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "xinjiang_mr") as t:
        bad = await call(http, t, "GetCheckLabList", {"strFilter": "<root><id_type>1</id_type></root>", "strCredential": cred(specs)})
        assert bad.startswith("error:") and "strFilter.id_no is required" in bad and "strFilter.id_type" in bad


async def test_unsealed_call_is_refused(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "xinjiang_mr") as t:
        got = await call(http, t, "ArchiveAutoReport", lab(specs), seal=False)
        assert got.startswith("error:") and "decrypt" in got
        assert t.stats()["records"] == {}


async def test_zeep_against_the_twins_wsdl_without_crypto(specs: SpecSet) -> None:
    async with start_twin(specs, "xinjiang_mr", use_crypto=False, fail_every=2) as t:
        wsdl = f"{t.soap_url()}?wsdl"

        def run() -> list[str]:
            zc = zeep.Client(wsdl)
            body = lab(specs)
            out = [zc.service.ArchiveAutoReport(strReportInfo=body["strReportInfo"], strCredential=body["strCredential"], strKey="")]
            try:
                zc.service.GetCheckLabList(strFilter=PATIENT, strCredential=body["strCredential"], strKey="")
            except zeep.exceptions.Fault as f:  # the injected failure: a Receiver fault
                out.append(f"fault:{f.code}")
            out.append(zc.service.GetCheckLabList(strFilter=PATIENT, strCredential=body["strCredential"], strKey=""))
            return out

        ok, fault, listed = await asyncio.to_thread(run)
        assert ok == "ok" and "Server" in fault
        assert etree.fromstring(listed.encode())[0].get("item_code") == "A01"
        assert t.stats()["injected"] == {"GetCheckLabList": 1}

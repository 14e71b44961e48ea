"""pe_system (Web API and CallInterface SOAP, {status, message}) and wedoctor_supervision (service /
appid / randomstr / sign headers, MD5 signature per the crypto profile) twins."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from twinhelp import client, example

from adapters.soap_envelope import build_call, parse_result
from adapters.wsdl import soap_service
from engine.spec import SpecSet
from engine.twin import RunningTwin, start_twin

HEADER = ("<root><serverName>{}</serverName><callOperator></callOperator><certificate>c1</certificate>"
          "<sendTime>2024-01-01 10:00:00</sendTime><sendCount>0</sendCount></root>")


async def soap(http: aiohttp.ClientSession, specs: SpecSet, t: RunningTwin, service: str, fields: dict[str, Any]) -> str:
    body = "<root>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</root>"
    ns = soap_service(t.twin.ps, common_groups=specs.common_groups).namespace
    params = {"msgHeader": HEADER.format(service), "msgBody": body}
    url = t.soap_url()
    assert url is not None
    async with http.post(url, data=build_call("1.2", ns, "CallInterface", params),
                         headers={"Content-Type": "application/soap+xml; charset=utf-8"}) as r:
        return parse_result(await r.read(), "CallInterface")


async def test_pe_system_web_api_and_soap(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "pe_system") as t:
        row = example(specs, "pe_system/lis_pubReport")
        async with http.post(f"{t.url}/api/lis/pubReport", json=row) as r:
            assert await r.json() == {"status": 0, "message": "正常"}
        async with http.post(f"{t.url}/api/lis/pubReport", json={**row, "ResultType": "N"}) as r:
            bad = await r.json()
        assert bad["status"] == -1 and "ResultType" in bad["message"]
        assert json.loads(await soap(http, specs, t, "lis_pubReport", {**row, "RepNo": "LR0002"})) == {"status": 0, "message": "正常"}
        err = await soap(http, specs, t, "lis_pubReport", {"RepNo": "x"})
        assert err.startswith("error:") and "msgBody.PECardNum is required" in err
        stats = t.stats()
        assert stats["deliveries"]["lis_pubReport"] == {"LR0001|100012345678|WBC": 1, "LR0002|100012345678|WBC": 1}
        assert stats["records"] == {"lab_results": 2} and stats["reply_errors"] == {}


async def test_wedoctor_signature_and_batches(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "wedoctor_supervision", fail_every=3) as t:
        cp = client(t)
        body = json.dumps(example(specs, "wedoctor_supervision/A1000", 1), ensure_ascii=False).encode()

        async def send(headers: dict[str, str], raw: bytes = body, path: str = "/ihs/api/base/hospital") -> dict[str, Any]:
            async with http.post(t.url + path, data=raw, headers={**headers, "Content-Type": "application/json"}) as r:
                return await r.json()

        sealed = cp.seal_request(body, {"service": "A1000", "appid": "wy_hosp_001"})
        assert await send(sealed.headers) == {"code": "0", "message": "成功"}
        tampered = await send({**sealed.headers, "sign": "0" * 32})
        assert tampered["code"] != "0" and "signature" in tampered["message"]
        assert (await send(sealed.headers))["code"] == "SYSTEM_ERROR", "every 3rd request: the documented retry code"
        wrong_service = cp.seal_request(body, {"service": "A1001", "appid": "wy_hosp_001"})
        got = await send(wrong_service.headers)
        assert got["code"] != "0" and "headers.service" in got["message"]
        stats = t.stats()
        assert stats["deliveries"]["A1000"] == {"H001": 1, "H002": 1}
        assert stats["injected"] == {"A1000": 1}

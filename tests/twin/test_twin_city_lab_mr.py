"""city_lab_mr twin: GET token call, 24 h access_token in a header, SM4/SM2 digital envelope on the body,
verdict in the messagecode/messagetext headers, businessId sessions HR02 -> HR03."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import aiohttp
from twinhelp import client, example

from engine.spec import SpecSet
from engine.twin import RunningTwin, start_twin

BASE = "/pmemr/productMutualRecognition"


async def token(http: aiohttp.ClientSession, t: RunningTwin, secret: str = "secret001") -> tuple[str, str | None]:
    async with http.get(f"{t.url}/auth/accesstoken/create", params={"appId": "app001", "appSecret": secret}) as r:
        return r.headers["messagecode"], (await r.json()).get("access_token")


async def call(http: aiohttp.ClientSession, t: RunningTwin, path: str, body: Any, tok: str | None) -> tuple[str, str, Any]:
    """Seal as the bridge does, post, open the answer: (messagecode, messagetext, body)."""
    cp = client(t)
    headers = {"authoritytype": "2", "secrettype": "1", "heartbeat": "0", "testmarker": "0", "elementsVersion": "1.00",
               "Content-Type": "application/json;charset=UTF-8"}
    if tok is not None:
        headers["access_token"] = tok
    sealed = cp.seal_request(json.dumps(body, ensure_ascii=False).encode(), headers)
    async with http.post(t.url + BASE + path, data=sealed.body, headers=sealed.headers) as r:
        raw = await r.read()
        code, text = r.headers["messagecode"], unquote(r.headers["messagetext"])
        if code != "1000":
            return code, text, None
        return code, text, json.loads(cp.open_response(raw, dict(r.headers), session=sealed.session).body)


async def test_token_then_hr02_opens_a_session_hr03_finds_it(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "city_lab_mr") as t:
        code, tok = await token(http, t)
        assert code == "1000" and tok
        code, _, hr02 = await call(http, t, "/checkApply", example(specs, "city_lab_mr/HR02"), tok)
        assert code == "1000"
        qak = hr02["messages"]["QAK"]
        assert qak["flag"] == "true" and qak["businessId"]
        hr03 = example(specs, "city_lab_mr/HR03")
        hr03["messages"]["PV1"]["businessId"] = qak["businessId"]
        code, _, got = await call(http, t, "/getCheckInfo", hr03, tok)
        assert code == "1000" and got["messages"]["QAK"]["flag"] == "1"
        hr03["messages"]["PV1"]["businessId"] = "never-issued"
        code, _, _ = await call(http, t, "/getCheckInfo", hr03, tok)
        assert code == "1101"
        assert t.stats()["reply_errors"] == {}


async def test_token_codes_missing_invalid_expired_and_bad_secret(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "city_lab_mr") as t:
        assert (await token(http, t, "wrong"))[0] == "1005"
        body = example(specs, "city_lab_mr/HR01")
        assert (await call(http, t, "/getCrossUrl", body, None))[0] == "1003"
        assert (await call(http, t, "/getCrossUrl", body, "forged"))[0] == "1002"
        _, tok = await token(http, t)
        assert (await call(http, t, "/getCrossUrl", body, tok))[0] == "1000"
        t.advance(86400)
        code, text, _ = await call(http, t, "/getCrossUrl", body, tok)
        assert code == "1001" and text.startswith("访问令牌过期")


async def test_invalid_body_names_the_field(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "city_lab_mr") as t:
        _, tok = await token(http, t)
        body = example(specs, "city_lab_mr/HR01")
        body["messages"]["PID"]["sexCode"] = "3"
        code, text, _ = await call(http, t, "/getCrossUrl", body, tok)
        assert code == "1101" and "messages.PID.sexCode" in text


async def test_envelope_sealed_for_another_key_is_1140(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "city_lab_mr") as t, start_twin(specs, "city_lab_mr") as other:
        _, tok = await token(http, t)
        body = json.dumps(example(specs, "city_lab_mr/HR01"), ensure_ascii=False).encode()
        sealed = client(other).seal_request(body, {"authoritytype": "2", "access_token": tok or "", "secrettype": "1", "heartbeat": "0",
                                                   "testmarker": "0", "elementsVersion": "", "Content-Type": "application/json"})
        async with http.post(t.url + BASE + "/getCrossUrl", data=sealed.body, headers=sealed.headers) as r:
            assert r.headers["messagecode"] == "1140"

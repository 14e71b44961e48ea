"""jilin_imaging twin over real sockets: tokens (lifetime, cap of 30, lock-out after 6 bad secrets),
SM2-encrypted idCardNo, upload then query, PDFs, validation in the platform's format, fault injection."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from twinhelp import client, example

from engine.spec import SpecSet
from engine.twin import RunningTwin, start_twin

GOOD = {"uid": "ADSADT12", "appSecret": "meCG2Tz5PocVGEcoaM2Nvw=="}
ID_CARD = "110105194912310021"


async def post(http: aiohttp.ClientSession, t: RunningTwin, name: str, body: Any, token: str | None = None) -> dict[str, Any]:
    headers = {"X-Token": token} if token else {}
    async with http.post(f"{t.url}/interface/{name}", json=body, headers=headers) as r:
        assert r.status == 200
        return await r.json()


async def token(http: aiohttp.ClientSession, t: RunningTwin) -> str:
    got = await post(http, t, "getToken", GOOD)
    assert got["code"] == 200, got
    return got["datas"]["token"]


def exam(specs: SpecSet, t: RunningTwin, access: str = "CS23213233", id_card: str = ID_CARD) -> dict[str, Any]:
    body = dict(example(specs, "jilin_imaging/savePatientExam"))
    body.update(accessNumber=access, idCardNo=id_card)
    return client(t).encrypt_fields(body)


def query(specs: SpecSet, t: RunningTwin, id_card: str = ID_CARD) -> dict[str, Any]:
    body = dict(example(specs, "jilin_imaging/queryFormerlyExam"))
    body["idCardNo"] = id_card
    return client(t).encrypt_fields(body)


async def test_upload_then_query_returns_it_with_its_case_id(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "jilin_imaging") as t:
        tok = await token(http, t)
        saved = await post(http, t, "savePatientExam", exam(specs, t), tok)
        assert saved["code"] == 200 and saved["msg"] == "操作成功" and saved["datas"]
        again = await post(http, t, "savePatientExam", exam(specs, t), tok)
        assert again["datas"] == saved["datas"], "a re-upload of the same (hospitalCode, accessNumber) keeps its examId"
        found = await post(http, t, "queryFormerlyExam", query(specs, t), tok)
        assert found["code"] == 200
        assert [(d["examId"], d["accessNumber"]) for d in found["datas"]] == [(saved["datas"], "CS23213233")]
        none = await post(http, t, "queryFormerlyExam", query(specs, t, "11010519491231002X"), tok)
        assert none["code"] == 404 and none["msg"].startswith("未查询到数据")
        stats = t.stats()
        assert stats["deliveries"]["savePatientExam"] == {"SAF2313|CS23213233": 2}
        assert stats["duplicates"] == {"savePatientExam": ["SAF2313|CS23213233"]}
        assert stats["reply_errors"] == {}


async def test_invalid_request_gets_400_naming_the_field(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "jilin_imaging") as t:
        tok = await token(http, t)
        body = exam(specs, t)
        body["patientType"] = "5"
        del body["studyUid"]
        got = await post(http, t, "savePatientExam", body, tok)
        assert got["code"] == 400 and "入参不规范" in got["msg"]
        assert "patientType" in got["msg"] and "studyUid is required" in got["msg"]
        assert t.stats()["records"] == {}


async def test_plaintext_id_card_is_refused_as_bad_input(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "jilin_imaging") as t:
        tok = await token(http, t)
        body = dict(example(specs, "jilin_imaging/savePatientExam"))
        got = await post(http, t, "savePatientExam", body, tok)
        assert got["code"] == 400


async def test_token_required_unknown_and_expired_get_403(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "jilin_imaging") as t:
        assert (await post(http, t, "savePatientExam", exam(specs, t)))["code"] == 403
        assert (await post(http, t, "savePatientExam", exam(specs, t), "not-a-token"))["code"] == 403
        tok = await token(http, t)
        t.advance(7199)
        assert (await post(http, t, "savePatientExam", exam(specs, t), tok))["code"] == 200
        async with http.post(f"{t.url}/__twin__/advance", params={"seconds": "2"}) as r:
            assert r.status == 200
        got = await post(http, t, "savePatientExam", exam(specs, t), tok)
        assert got["code"] == 403 and "expired" in got["msg"]


async def test_lockout_after_six_bad_secrets(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "jilin_imaging") as t:
        bad = {"uid": GOOD["uid"], "appSecret": "wrong"}
        codes = [(await post(http, t, "getToken", bad))["code"] for _ in range(6)]
        assert codes == [11001] * 5 + [11003]
        locked = await post(http, t, "getToken", GOOD)
        assert locked["code"] == 11003 and "6次" in locked["msg"], "locked even with the right secret"
        t.advance(10 * 60 + 1)
        assert (await post(http, t, "getToken", GOOD))["code"] == 200


async def test_daily_cap_of_30_tokens(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    async with start_twin(specs, "jilin_imaging") as t:
        for _ in range(30):
            await token(http, t)
        capped = await post(http, t, "getToken", GOOD)
        assert capped["code"] == 11004 and "30" in capped["msg"]
        assert t.stats()["tokens"]["issued_today"] == 30
        t.advance(86400)
        assert (await post(http, t, "getToken", GOOD))["code"] == 200


async def test_pdf_upload_then_download(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    pdf = b"%PDF-1.4\n% twin test\n%%EOF\n"
    async with start_twin(specs, "jilin_imaging") as t:
        tok = await token(http, t)
        form = aiohttp.FormData()
        form.add_field("hospitalCode", "SAF2313")
        form.add_field("accessNumber", "CS1")
        form.add_field("examPdf", pdf, filename="r.pdf", content_type="application/pdf")
        async with http.post(f"{t.url}/interface/saveExamPdf", data=form, headers={"X-Token": tok}) as r:
            assert (await r.json())["code"] == 200
        ask = {"hospitalCode": "SAF2313", "accessNumber": "CS1", "queryDocName": "黄", "queryDocCode": "1", "queryDeptName": "骨科",
               "queryDeptCode": "1"}
        async with http.post(f"{t.url}/interface/queryExamPdfData", json=ask, headers={"X-Token": tok}) as r:
            assert r.content_type == "application/pdf" and await r.read() == pdf
        got = await post(http, t, "queryExamPdfData", {**ask, "accessNumber": "CS2"}, tok)
        assert got["code"] == 404


@pytest.mark.parametrize("n", [3])
async def test_fail_every_is_deterministic_and_counted(specs: SpecSet, http: aiohttp.ClientSession, n: int) -> None:
    async with start_twin(specs, "jilin_imaging", fail_every=n) as t:
        tok = await token(http, t)  # token calls are never failed
        codes = [(await post(http, t, "savePatientExam", exam(specs, t, f"A{i}"), tok))["code"] for i in range(7)]
        assert codes == [200, 200, 503, 200, 200, 503, 200]
        stats = t.stats()
        assert stats["injected"] == {"savePatientExam": 2}
        assert stats["delivered"] == {"savePatientExam": 5} and stats["duplicates"] == {}
        async with http.post(f"{t.url}/__twin__/reset") as r:
            assert r.status == 200
        async with http.get(f"{t.url}/__twin__/stats") as r:
            after = await r.json()
        assert after["deliveries"] == {} and after["records"] == {}


async def test_query_answers_from_the_time_window_it_asks_about(specs: SpecSet, http: aiohttp.ClientSession) -> None:
    """queryFormerlyExam finds exams whose checkTime lies in checkStartTime..checkEndTime; without a start,
    the last 7 days (the document's default); without an end, up to now."""
    import datetime as dt

    recent = (dt.datetime.now() - dt.timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    async with start_twin(specs, "jilin_imaging") as t:
        tok = await token(http, t)
        old = await post(http, t, "savePatientExam", exam(specs, t), tok)  # the example's checkTime: 2022-03-18 17:00:00
        body = dict(example(specs, "jilin_imaging/savePatientExam"))
        body.update(accessNumber="CS-RECENT", idCardNo=ID_CARD, checkTime=recent)
        new = await post(http, t, "savePatientExam", client(t).encrypt_fields(body), tok)

        async def ask(**window: str) -> list[str] | int:
            q = dict(example(specs, "jilin_imaging/queryFormerlyExam"))
            q.pop("checkStartTime"), q.pop("checkEndTime")
            q.update(idCardNo=ID_CARD, **window)
            got = await post(http, t, "queryFormerlyExam", client(t).encrypt_fields(q), tok)
            return sorted(d["examId"] for d in got["datas"]) if got["code"] == 200 else got["code"]

        assert await ask(checkStartTime="2022-03-18 17:00:00", checkEndTime="2022-03-18 17:00:00") == [old["datas"]]  # inclusive
        assert await ask(checkStartTime="2022-03-19 00:00:00", checkEndTime="2022-03-20 00:00:00") == 404
        assert await ask() == [new["datas"]]  # the last 7 days
        assert await ask(checkStartTime="2022-01-01 00:00:00") == sorted([old["datas"], new["datas"]])  # up to now
        assert await ask(checkEndTime="2022-03-20 00:00:00") == [old["datas"]]  # the 7 days before the end

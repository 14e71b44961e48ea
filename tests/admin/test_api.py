"""Every admin API verb over a real socket, against a running bridge and a platform twin."""

from __future__ import annotations

import logging
import time

import pytest

from engine.admin.app import AdminServer
from engine.journal import State
from tests.admin.conftest import IFACE, Env, all_in, until


async def _dead(env: Env, n: int) -> list[int]:
    """n DEAD letters: the platform is down for them (two failed attempts each)."""
    await env.twin_down()
    ids = await env.receive("pacs", n)
    await until(lambda: all_in(env, ids, State.DEAD))
    await env.twin_up()
    return ids


# -- auth --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong-token-of-good-length", ""])
async def test_api_refuses_requests_without_the_token(env: Env, token: str | None) -> None:
    status, body = await env.api("GET", "/api/messages", token=token if token != "" else "x")
    assert status == 401 and "bearer token" in body["error"]


async def test_api_wants_the_bearer_scheme_and_says_so(env: Env) -> None:
    async with env.http.get(env.url + "/api/routes", headers={"Authorization": f"Basic {env.token}"}) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_probes_and_metrics_need_no_token_and_the_api_off_is_a_403(env: Env) -> None:
    assert (await env.api("GET", "/health", token=None))[0] == 200
    assert (await env.api("GET", "/ready", token=None))[0] == 200
    off = await AdminServer(env.rt, token=None).start()
    try:
        async with env.http.get(off.url + "/api/routes", headers={"Authorization": f"Bearer {env.token}"}) as resp:
            assert resp.status == 403 and "admin.token" in (await resp.json())["error"]
        async with env.http.get(off.url + "/metrics") as resp:
            assert resp.status == 200
    finally:
        await off.stop()


async def test_the_token_never_reaches_the_log(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await env.api("GET", "/api/messages")
    await env.api("GET", "/api/messages", token="not-the-token-but-long")
    await env.api("GET", "/api/messages?limit=zero")
    assert env.token not in caplog.text


# -- search and show ------------------------------------------------------------------------------------
async def test_search_filters_pages_and_bounds_by_time(env: Env) -> None:
    sent = await env.receive("pacs", 5)
    await until(lambda: all_in(env, sent, State.SENT))
    dead = await _dead(env, 1)
    status, page = await env.api("GET", "/api/messages?limit=2")
    assert status == 200
    assert [m["id"] for m in page["items"]] == [dead[0], sent[4]]  # newest first
    seen = [m["id"] for m in page["items"]]
    while page["next_cursor"] is not None:
        status, page = await env.api("GET", f"/api/messages?limit=2&cursor={page['next_cursor']}")
        seen += [m["id"] for m in page["items"]]
    assert seen == sorted(sent + dead, reverse=True)

    _, only_dead = await env.api("GET", f"/api/messages?state=DEAD&interface={IFACE}&target=jilin")
    assert [(m["id"], m["state"]) for m in only_dead["items"]] == [(dead[0], "DEAD")]
    assert "gave up after 2 attempts" in only_dead["items"][0]["last_error"]
    assert only_dead["next_cursor"] is None

    m = await env.rt.journal.get(sent[2])
    _, by_key = await env.api("GET", f"/api/messages?key={m.key}")
    assert [h["id"] for h in by_key["items"]] == [sent[2]]
    assert by_key["items"][0]["in_doubt"] is False

    # one left in doubt (its holder's lease ran out mid-send) says so in the list and in its detail
    j = env.rt.journal
    doubt = await j.receive(IFACE, "elsewhere", b"{}", key="doubt-1")  # a target no sender here claims for
    await j.claim_due("elsewhere", lease_s=0.001)
    [again] = await j.claim_due("elsewhere", now=time.time() + 1)
    _, listed = await env.api("GET", "/api/messages?key=doubt-1")
    assert [(h["id"], h["in_doubt"]) for h in listed["items"]] == [(doubt.id, True)] and again.in_doubt
    _, one = await env.api("GET", f"/api/messages/{doubt.id}")
    assert one["in_doubt"] is True

    _, oldest = await env.api("GET", "/api/messages?order=oldest&limit=1")
    assert oldest["items"][0]["id"] == sent[0]
    _, future = await env.api("GET", f"/api/messages?since={time.time() + 3600}")
    assert future["items"] == []
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
    _, recent = await env.api("GET", f"/api/messages?since={iso}&state=SENT")
    assert len(recent["items"]) == 5


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=lots", "limit"), ("limit=501", "limit"), ("state=LOST", "state"), ("since=yesterday", "since"),
    ("until=2024-13-45", "until"), ("since=nan", "since"), ("cursor=-1", "cursor"), ("order=random", "order"), ("colour=red", "colour"),
])
async def test_bad_search_parameters_are_400_naming_the_field(env: Env, query: str, field: str) -> None:
    status, body = await env.api("GET", f"/api/messages?{query}")
    assert status == 400, body
    assert body["field"] == field and body["error"]
    assert "Traceback" not in body["error"]


async def test_show_gives_every_attempt_with_personal_data_masked(env: Env) -> None:
    (mid,) = await _dead(env, 1)
    await env.api("POST", f"/api/messages/{mid}/replay")
    await until(lambda: all_in(env, [mid], State.SENT))
    status, m = await env.api("GET", f"/api/messages/{mid}")
    assert status == 200
    assert m["state"] == "SENT" and m["route"] == "exams" and m["target"] == "jilin"
    assert [a["outcome"] for a in m["history"]] == ["retry", "retry", "ok"]
    assert m["history"][0]["error"] and m["history"][-1]["status"] == 200
    record = env.specset.interface("hospital_pacs/exam_report").spec.examples[0].body
    assert record["ID_CARD"] not in m["source"]  # resident ID numbers never leave unmasked
    assert "ID_CARD" in m["source"]
    assert (await env.api("GET", "/api/messages/999999"))[0] == 404
    status, body = await env.api("GET", "/api/messages/abc")
    assert status == 400 and body["field"] == "id"


# -- replay ------------------------------------------------------------------------------------------------
async def test_replay_one_dead_message_delivers_it(env: Env) -> None:
    dead = await _dead(env, 2)
    status, body = await env.api("POST", f"/api/messages/{dead[0]}/replay", json={"retranslate": False})
    assert status == 200 and body == {"id": dead[0], "state": "TRANSLATED", "paused": False}
    await until(lambda: all_in(env, [dead[0]], State.SENT))
    assert await env.states([dead[1]]) == [State.DEAD]  # only the one asked for
    assert sum(env.twin.stats()["deliveries"]["savePatientExam"].values()) == 1


async def test_replay_refusals_are_clear(env: Env) -> None:
    assert (await env.api("POST", "/api/messages/424242/replay"))[0] == 404
    status, body = await env.api("POST", "/api/messages/1/replay", data=b"{not json")
    assert status == 400 and "not JSON" in body["error"]
    status, body = await env.api("POST", "/api/messages/1/replay", json={"retranslate": "maybe"})
    assert status == 400 and body["field"] == "retranslate"
    # a superseded version: replaying it would overwrite newer data on the platform
    await env.twin_down()
    rec = env.record()
    (v1,) = await env.rt.receive("pacs", rec)
    await until(lambda: all_in(env, [v1], State.DEAD))
    (v2,) = await env.rt.receive("pacs", {**rec, "CONCLUSION": "更正：胸部CT平扫未见明显异常。"})
    assert v2 != v1
    status, body = await env.api("POST", f"/api/messages/{v1}/replay")
    assert status == 409 and f"superseded by #{v2}" in body["error"]


async def test_replay_all_dead_of_an_interface(env: Env) -> None:
    dead = await _dead(env, 3)
    status, body = await env.api("POST", "/api/replay-dead", json={"interface": IFACE, "target": "jilin"})
    assert status == 200 and body["replayed"] == 3
    await until(lambda: all_in(env, dead, State.SENT))
    status, body = await env.api("POST", "/api/replay-dead", json={"interface": "jilin_imaging/nope"})
    assert status == 400 and body["field"] == "interface"
    status, body = await env.api("POST", "/api/replay-dead", json={"interface": IFACE, "target": "moon"})
    assert status == 400 and body["field"] == "target"
    status, body = await env.api("POST", "/api/replay-dead", json={})
    assert status == 400 and "interface" in body["error"]


# -- routes, pause, errors -----------------------------------------------------------------------------------
async def test_paused_route_holds_its_messages_while_others_flow_then_resume_drains_them(env: Env) -> None:
    status, body = await env.api("POST", "/api/routes/exams/pause")
    assert status == 200 and body["paused"] is True
    held = await env.receive("pacs", 3)       # route exams: paused
    flowing = await env.receive("archive", 2)  # route backfill: same target, not paused
    await until(lambda: all_in(env, flowing, State.SENT))
    # the held ones were due first and the loop has since claimed newer ones: they are being held, not late
    assert await env.states(held) == [State.TRANSLATED] * 3
    assert await env.rt.journal.kv_get("runtime:paused_routes") == '["exams"]'  # survives a restart
    _, routes = await env.api("GET", "/api/routes")
    by_id = {r["id"]: r for r in routes}
    assert by_id["exams"]["paused"] is True and by_id["backfill"]["paused"] is False
    assert by_id["backfill"]["sent"] == 2 and by_id["backfill"]["sent_per_min"] > 0
    assert by_id["exams"]["sent"] == 0
    assert by_id["exams"]["targets"][0]["states"]["TRANSLATED"] == 3

    status, body = await env.api("POST", "/api/routes/exams/resume")
    assert status == 200 and body["paused"] is False
    await until(lambda: all_in(env, held, State.SENT))
    assert (await env.api("POST", "/api/routes/nowhere/pause"))[0] == 404


async def test_errors_are_grouped_by_reason(env: Env) -> None:
    await _dead(env, 2)
    status, body = await env.api("GET", "/api/errors")
    assert status == 200
    (group,) = body["groups"]
    assert group["state"] == "DEAD" and group["count"] == 2 and group["interface"] == IFACE and group["target"] == "jilin"
    assert "gave up after 2 attempts" in group["reason"]
    assert (await env.api("GET", "/api/errors?sample=0"))[0] == 400


async def test_overview_tells_the_bridge_and_its_journal(env: Env) -> None:
    ids = await env.receive("pacs", 2)
    await until(lambda: all_in(env, ids, State.SENT))
    status, ov = await env.api("GET", "/api/overview")
    assert status == 200
    assert ov["bridge"] == "admin-test" and ov["ready"] is True and ov["reason"] is None
    assert ov["journal"]["rows"] == 2 and ov["journal"]["by_interface"] == {IFACE: {"SENT": 2}}


async def test_unknown_paths_and_methods_answer_json(env: Env) -> None:
    status, body = await env.api("GET", "/api/nothing-here")
    assert status == 404 and "error" in body
    status, body = await env.api("DELETE", "/api/messages/1")
    assert status == 405 and "error" in body

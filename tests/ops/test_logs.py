"""Structured logs: a real delivery (bridge runtime -> jilin_imaging twin over loopback) logged as JSON,
every line parsed; message ids on every runtime line; no ID number, phone or secret in any line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import logs
from engine.bridge.model import Route, RouteTarget, Source
from engine.cli import build_parser, main
from tests.bridge.conftest import CREDENTIALS, example, make_bridge, runtime_for

ID_NO, PHONE = "110105197206150026", "13912345678"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    logs.configure("json", "DEBUG", stream=buf)
    try:
        yield buf
    finally:
        logs.configure("text", "WARNING")


async def _until_done(rt, n: int) -> dict[str, int]:
    for _ in range(400):
        counts: dict[str, int] = {}
        for by_state in (await rt.journal.stats()).values():
            for s, c in by_state.items():
                counts[s] = counts.get(s, 0) + c
        if counts.get("SENT", 0) + counts.get("DEAD", 0) >= n:
            return counts
        await asyncio.sleep(0.05)
    raise AssertionError(f"not delivered: {counts}")


async def test_a_real_delivery_logs_json_with_message_ids_and_nothing_sensitive(
        twins, specset, mappings, tmp_path: Path, captured: io.StringIO) -> None:
    await twins.start("jilin_imaging")
    bridge = make_bridge(
        twins, tmp_path,
        sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
        routes=[Route(id="exams", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam")])],
        targets={"jilin": twins.target("jilin_imaging")},
    )
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        good = example(specset, "hospital_pacs/exam_report")
        assert good["ID_CARD"] == ID_NO and good["PHONE"] == PHONE
        bad = {**good, "REPORT_ID": "R-BAD", "VISIT_DATE": ID_NO}  # a view column holding the ID number: untranslatable
        [sent_id] = await rt.receive("pacs", good)
        [dead_id] = await rt.receive("pacs", bad)
        assert await _until_done(rt, 2) == {"SENT": 1, "DEAD": 1}
    finally:
        await rt.stop()

    lines = captured.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records and all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    runtime = [r for r in records if r["logger"] == "specbridge.runtime"]
    assert runtime and all("message_id" in r for r in runtime), [r for r in runtime if "message_id" not in r]
    by_id = {mid: [r for r in records if r.get("message_id") == mid] for mid in (sent_id, dead_id)}
    assert any(r["msg"].startswith("sent (attempt 1") and r["target"] == "jilin" and r["route"] == "exams"
               and r["interface"] == "jilin_imaging/savePatientExam" for r in by_id[sent_id])
    assert any(r["msg"].startswith("journalled from pacs") for r in by_id[sent_id])
    warned = [r for r in by_id[dead_id] if r["level"] == "warning"]
    assert any(r["msg"].startswith("dead: translation:") for r in warned)
    assert any(r["msg"].startswith("translation failed at receive") for r in warned)
    # the untranslatable value did reach the log, masked: the redaction is what kept it out
    assert any("110105********0026" in json.dumps(r, ensure_ascii=False) for r in warned)
    text = captured.getvalue()
    secrets = [v for v in CREDENTIALS["jilin_imaging"].values() if v != "HOSP0001"]
    for leak in (ID_NO, PHONE, *secrets):
        assert leak not in text, leak


async def test_concurrent_messages_keep_their_own_ids(captured: io.StringIO) -> None:
    log = logging.getLogger("specbridge.runtime")

    async def handle(mid: int) -> None:
        with logs.message_context(mid, target=f"t{mid}"):
            for step in range(3):
                log.info("step %d", step)
                await asyncio.sleep(0)

    await asyncio.gather(*(handle(i) for i in range(1, 6)))
    log.info("between messages")
    records = [r for r in map(json.loads, captured.getvalue().splitlines()) if r["logger"] == "specbridge.runtime"]
    for r in records[:-1]:
        assert r["target"] == f"t{r['message_id']}"
    assert sorted(r["message_id"] for r in records[:-1]) == sorted(list(range(1, 6)) * 3)
    assert "message_id" not in records[-1]


def test_secrets_and_personal_data_are_scrubbed_from_every_field(captured: io.StringIO) -> None:
    logs.register_secrets(["s3cr3t-value-42"])
    logs.register_credentials({"org_code": "457759922", "appSecret": "another-secret", "uid": "HOSP0042"})
    log = logging.getLogger("specbridge.auth")
    log.warning("token refresh failed with s3cr3t-value-42 for 457759922: %s", '{"access_token": "tok-abc", "idCardNo": "x"}',
                extra={"request": "POST /token?appId=HOSP0042&appSecret=another-secret", "detail": f"patient {ID_NO} tel {PHONE}"})
    try:
        raise ValueError("Authorization: Bearer abcdefghijklmnop")
    except ValueError:
        log.exception("refused")
    out = captured.getvalue()
    for leak in ("s3cr3t-value-42", "another-secret", "tok-abc", ID_NO, PHONE, "abcdefghijklmnop"):
        assert leak not in out, leak
    first, second = (json.loads(line) for line in out.splitlines())
    assert "457759922" in first["msg"] and "HOSP0042" in first["request"]  # identifiers an operator needs stay
    assert first["detail"] == "patient 110105********0026 tel 139****5678"
    assert "Bearer ***" in second["exc"] and "Traceback" in second["exc"]


def test_text_format_carries_the_id_too() -> None:
    buf = io.StringIO()
    logs.configure("text", "INFO", stream=buf)
    try:
        with logs.message_context(42, target="jilin"):
            logging.getLogger("specbridge.runtime").info("sent (attempt 1, 35 ms)")
    finally:
        logs.configure("text", "WARNING")
    line = buf.getvalue().strip()
    assert line.endswith("INFO specbridge.runtime [#42] sent (attempt 1, 35 ms) target=jilin")


def test_log_options_are_global_and_on_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    p = build_parser()
    a = p.parse_args(["--log-format", "json", "run", "b.yaml"])
    b = p.parse_args(["run", "b.yaml", "--log-format", "json", "--log-level", "debug"])
    c = p.parse_args(["--log-level", "ERROR", "run", "b.yaml"])
    assert (a.log_format, b.log_format, b.log_level, c.log_level) == ("json", "json", "DEBUG", "ERROR")
    try:
        h = logs.configure_from(p.parse_args(["run", "b.yaml"]))
        assert isinstance(h.formatter, logs.TextFormatter) and logging.getLogger().level == logging.INFO  # run logs deliveries
        h = logs.configure_from(p.parse_args(["check"]))
        assert logging.getLogger().level == logging.WARNING
        monkeypatch.setenv("SPECBRIDGE_LOG_FORMAT", "json")
        h = logs.configure_from(p.parse_args(["check"]))
        assert isinstance(h.formatter, logs.JsonFormatter)
        monkeypatch.setenv("SPECBRIDGE_LOG_FORMAT", "yaml")
        assert main(["schema", "codes"]) == 2
        assert "log format 'yaml': use one of text, json" in capsys.readouterr().err
    finally:
        logs.configure("text", "WARNING")


def test_a_text_logged_clean_is_masked_once_it_holds_a_newly_registered_secret() -> None:
    line = "refresh with rotated-secret-77 failed"
    assert logs.scrub(line) == line  # clean (and remembered as clean)
    logs.register_secrets(["rotated-secret-77"])
    assert logs.scrub(line) == "refresh with *** failed"


def test_a_secret_or_id_number_across_the_length_limit_is_masked_not_cut_in_half() -> None:
    logs.register_secrets(["straddling-secret-value"])
    for leak in ("straddling-secret-value", ID_NO):
        out = logs.scrub("x" * 990 + " " + leak + " tail", limit=1000)
        assert out.startswith("x" * 990) and leak[:9] not in out, out[980:]

"""`specbridge backfill BRIDGE SOURCE`: a real view (the demo hospital's SQLite database) drained into a
real journal with a progress line, nothing delivered, and `run`'s poller resuming after it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.base import InboundMessage, Reply
from engine.cli import main
from engine.demo.sample import build_hospital
from engine.journal import Journal
from engine.runtime.serve import open_bridge, open_view

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_hospital(tmp_path_factory.mktemp("hospital"), patients=8)


@pytest.fixture
def bridge(tmp_path: Path, hospital: Any) -> Path:
    db = hospital.database
    path = tmp_path / "bridge.yaml"
    path.write_text(f"""
id: backfill_test
journal: {{path: "{tmp_path}/journal.db", synchronous: NORMAL}}
sources:
  lis:
    adapter: dbview
    spec: hospital_lis/lab_report
    settings: {{database: "{db}", state: "{tmp_path}/lis.cursor.db", group_by: [REPORT_NO]}}
  pacs:
    adapter: dbview
    spec: hospital_pacs/exam_report
    settings: {{database: "{db}", state: "{tmp_path}/pacs.cursor.db"}}
  his:
    adapter: http_json
    spec: hospital_his/online_visit
targets:
  xinjiang: {{platform: xinjiang_mr, base_url: "http://127.0.0.1:9"}}
  jilin: {{platform: jilin_imaging, base_url: "http://127.0.0.1:9"}}
routes:
  - {{id: labs, source: lis, to: [{{target: xinjiang, interface: ArchiveAutoReport.lab}}]}}
  - id: exams
    source: pacs
    to: [{{target: jilin, interface: savePatientExam}}, {{target: xinjiang, interface: ArchiveAutoReport.exam}}]
""", encoding="utf-8")
    return path


def _journal(path: Path) -> dict[str, dict[str, int]]:
    async def go() -> dict[str, dict[str, int]]:
        async with await Journal.open(str(path)) as j:
            return await j.stats()

    return asyncio.run(go())


def test_backfill_journals_every_row_once_and_delivers_nothing(bridge: Path, hospital: Any, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    rows = sum(len(r) for r in hospital.lab_reports)
    reports = len(hospital.lab_reports)
    assert main(["backfill", str(bridge), "lis"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"backfill lis: {rows} row(s) read as {reports} record(s): {reports} message(s) journalled (0 already there)")
    assert err.startswith(f"backfill lis: {rows}/{rows} rows (100%)")  # not a terminal: a plain line, no redraws
    assert "\r" not in err
    assert _journal(bridge.parent / "journal.db") == {"xinjiang_mr/ArchiveAutoReport.lab": {"TRANSLATED": reports}}

    assert main(["backfill", str(bridge), "lis"]) == 0  # the cursor moved: nothing left
    assert capsys.readouterr().out.startswith("backfill lis: 0 row(s) read as 0 record(s)")

    (bridge.parent / "lis.cursor.db").unlink()  # a cursor reset re-reads the view; the journal's keys absorb it
    assert main(["backfill", str(bridge), "lis"]) == 0
    assert f"{reports} message(s) journalled ({reports} already there)" in capsys.readouterr().out
    assert _journal(bridge.parent / "journal.db") == {"xinjiang_mr/ArchiveAutoReport.lab": {"TRANSLATED": reports}}



def test_run_resumes_after_the_backfilled_rows(bridge: Path, hospital: Any, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["backfill", str(bridge), "pacs"]) == 0  # one record per row, one message per route target
    n = len(hospital.exam_reports)
    assert f"{n} row(s) read as {n} record(s): {2 * n} message(s) journalled" in capsys.readouterr().out

    async def poll_as_run_does() -> int:
        runtime, _ = await open_bridge(bridge, ROOT / "specs")
        view = await open_view(runtime, "pacs", Path.cwd())  # what start_sources polls
        seen: list[InboundMessage] = []

        async def sink(msg: InboundMessage) -> Reply:
            seen.append(msg)
            return Reply(b"{}")

        try:
            await view.poller.poll_once(sink)
        finally:
            await view.stop()
        return len(seen)

    assert asyncio.run(poll_as_run_does()) == 0


def test_backfill_refuses_what_is_not_a_view(bridge: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["backfill", str(bridge), "his"]) == 2
    assert "`his` is a http_json source, not a view (views: lis, pacs)" in capsys.readouterr().err
    assert main(["backfill", str(bridge), "nope"]) == 2
    assert "`nope` is not a source of this bridge" in capsys.readouterr().err
    assert not (bridge.parent / "journal.db").exists()

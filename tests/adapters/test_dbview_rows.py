"""Rows as the poller reads them (value tuples): the same messages as one row at a time, and a cursor
that passes only acknowledged rows when several are with the sink at once or a group spans pages.

Real SQLite files; the pollers are really stopped and new ones started over the same state file.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path

from adapters.base import InboundMessage, Reply
from adapters.dbview import ViewPoller
from adapters.rows import RowPlan, row_to_message
from adapters.sqlite_db import SqliteDatabase
from engine.spec import load_specs
from engine.spec.model import ViewBinding


def test_a_row_plan_gives_what_row_to_message_gives_whatever_the_values() -> None:
    fields = load_specs("specs", strict=False).interface("xinjiang_mr/v_web_jcjg").request.node.children  # type: ignore[union-attr]
    assert fields is not None
    cols = ("INSTANCESOPIUID", "SERIESNO", "CREATEDTIME", "FILESIZE", "EXTRA")
    rows = [
        ("1.2.3", "1", "2024-05-11 08:40:12", 1234, None),
        (7, 2.0, dt.datetime(2024, 5, 11, 8, 40, 12), Decimal("2.50"), True),  # numbers in text columns, a datetime, a Decimal
        ("1.2.4", "3", dt.date(2024, 5, 11), Decimal("4"), b"\x00\xff"),
        ("1.2.3", "1", "2024-05-11 08:40:12", 1234, None),  # a shape seen before
        (None, None, None, None, memoryview(b"\x01")),
    ]
    plan = RowPlan(fields)
    for row in rows:
        assert plan.message(cols, row) == row_to_message(dict(zip(cols, row, strict=True)), fields)
    assert plan.message(cols, rows[1])["INSTANCESOPIUID"] == "7" and plan.message(cols, rows[1])["FILESIZE"] == 2.5
    assert plan.message(cols, rows[1])["CREATEDTIME"] == "2024-05-11 08:40:12"
    # other columns (a changed view) re-plan; a repeated name keeps its first value, as sqlite3.Row does
    assert plan.message(("SERIESNO", "FILESIZE"), (5, 6)) == {"SERIESNO": "5", "FILESIZE": 6}
    assert plan.message(("SERIESNO", "SERIESNO", "FILESIZE"), (1, 2, 3)) == {"SERIESNO": "1", "FILESIZE": 3}
    assert RowPlan(None).message(("A",), (Decimal("1.0"),)) == {"A": 1}


VIEW = ViewBinding(name="v_lines", key=["REPORT", "LINE"], watermark="T")


def make_view(path: Path, reports: int, lines: int) -> None:
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE line (REPORT TEXT, LINE INTEGER, T TEXT, VALUE TEXT)")
    c.executemany("INSERT INTO line VALUES (?, ?, ?, ?)",
                  [(f"R{r:02d}", n, f"2024-05-11 08:{r:02d}:00", f"v{r}.{n}") for r in range(reports) for n in range(lines)])
    c.execute("CREATE VIEW v_lines AS SELECT T, REPORT, LINE, VALUE FROM line")
    c.commit()
    c.close()


async def test_several_rows_at_once_move_the_cursor_only_past_an_acknowledged_prefix(tmp_path: Path) -> None:
    make_view(tmp_path / "lis.db", reports=10, lines=1)
    state = tmp_path / "state.db"
    got: list[str] = []
    refuse = {"R05"}

    async def sink(msg: InboundMessage) -> Reply:
        assert isinstance(msg.body, dict)
        report = msg.body["REPORT"]
        if report in refuse:
            return Reply(b"{}", status=503)
        got.append(report)
        return Reply(b"{}")

    db = await SqliteDatabase.open(tmp_path / "lis.db", readonly=True)
    try:
        first = ViewPoller("lis/lines", VIEW, db, state, batch=4, window=3)
        assert await first.poll_once(sink) is False
        await first.stop()
        # R04, R05 and R06 were with the sink together, and the window after them (R07: two windows are in
        # flight at most): R06 and R07 were taken too, but the cursor stops before R05
        assert sorted(got) == ["R00", "R01", "R02", "R03", "R04", "R06", "R07"]
        assert first.cursor == ["2024-05-11 08:04:00", "R04", 0]
        refuse.clear()
        got.clear()
        second = ViewPoller("lis/lines", VIEW, db, state, batch=4, window=3)
        assert await second.poll_once(sink) is True
        await second.stop()
        assert got == [f"R{r:02d}" for r in range(5, 10)], "resumes at the refused row: nothing skipped (R06, R07 again: at least once)"
    finally:
        await db.close()


async def test_a_group_spanning_pages_arrives_whole_and_once(tmp_path: Path) -> None:
    make_view(tmp_path / "lis.db", reports=4, lines=3)
    state = tmp_path / "state.db"
    groups: list[list[tuple[str, int]]] = []

    async def sink(msg: InboundMessage) -> Reply:
        assert isinstance(msg.body, list)
        groups.append([(r["REPORT"], r["LINE"]) for r in msg.body])
        return Reply(b"{}", status=503 if len(groups) == 3 else 200)

    db = await SqliteDatabase.open(tmp_path / "lis.db", readonly=True)
    try:
        p = ViewPoller("lis/lines", VIEW, db, state, batch=2, group_by=["REPORT"])  # pages of 2 rows, groups of 3
        assert await p.poll_once(sink) is False
        await p.stop()
        p = ViewPoller("lis/lines", VIEW, db, state, batch=2, group_by=["REPORT"])
        assert await p.poll_once(sink) is True
        await p.stop()
    finally:
        await db.close()
    whole = [[(f"R{r:02d}", n) for n in range(3)] for r in range(4)]
    assert groups == [whole[0], whole[1], whole[2], whole[2], whole[3]], "the refused group comes back whole, the others once"

"""dbview: keyset polling with an acknowledged watermark, and the views the engine serves.

Real SQLite files throughout: a writer inserts into a hospital-style table behind a view while
the poller reads it; the poller is really stopped and a new one started over the same files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.base import InboundMessage, Reply
from adapters.dbview import CursorStore, ViewPoller, cursor_columns
from adapters.rows import decode_cursor, encode_cursor, format_java, to_message
from adapters.sql import ViewError, keyset_select, quote, table_ddl
from adapters.sqlite_db import SqliteDatabase
from adapters.viewstore import ViewStore
from engine.spec import SpecSet, load_specs
from engine.spec.model import ViewBinding


@pytest.fixture(scope="module")
def real_specs() -> SpecSet:
    """The real platform specs (others are still finishing some: not strict)."""
    return load_specs("specs", strict=False)


VIEW = ViewBinding(name="v_images", key=["INSTANCESOPIUID"], watermark="CREATEDTIME")


async def until(cond: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    """Wait for a condition (a deadline only so a broken poller fails instead of hanging)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)


def make_source(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE pacs_image (id INTEGER PRIMARY KEY, sop TEXT NOT NULL, created TEXT NOT NULL, pid TEXT)")
    c.execute("CREATE VIEW v_images AS SELECT sop AS INSTANCESOPIUID, created AS CREATEDTIME, pid AS PATIENT_ID FROM pacs_image")
    return c


def batch_rows(b: int) -> list[tuple[str, str]]:
    """Batch b: 1-3 rows sharing one watermark (a study archived in the same second)."""
    created = f"2024-05-11 08:{b:02d}:00"
    return [(f"1.2.826.0.1.3680043.99.{b}.{i}", created) for i in range(1 + b % 3)]


def insert_batch(c: sqlite3.Connection, b: int) -> None:
    c.execute("BEGIN")
    for sop, created in batch_rows(b):
        c.execute("INSERT INTO pacs_image (sop, created, pid) VALUES (?, ?, 'SYN0001')", (sop, created))
    c.execute("COMMIT")


async def test_rows_arrive_once_in_order_across_restart_with_an_unacknowledged_row(tmp_path: Path) -> None:
    src = make_source(tmp_path / "his.db")
    state = tmp_path / "poller-state.db"
    expected = [sop for b in range(12) for sop, _ in batch_rows(b)]
    x_row, y_row = batch_rows(2)[0][0], batch_rows(8)[1][0]
    received: list[str] = []
    attempts: dict[str, int] = {}
    fail_x = True
    fail_y = True

    async def sink(msg: InboundMessage) -> Reply:
        nonlocal fail_y
        assert isinstance(msg.body, dict)
        sop = msg.body["INSTANCESOPIUID"]
        attempts[sop] = attempts.get(sop, 0) + 1
        await asyncio.sleep(0)  # a real await, as a journal write is
        if sop == x_row and fail_x:
            raise RuntimeError("journal unavailable")
        if sop == y_row and fail_y:
            fail_y = False
            return Reply(b'{"error":"busy"}', status=503)
        received.append(sop)
        assert msg.meta["cursor"] == {"CREATEDTIME": msg.body["CREATEDTIME"], "INSTANCESOPIUID": sop}
        return Reply(b"{}")

    # first poller: rows inserted while it polls; x_row fails, and stays failed until it is stopped
    db1 = await SqliteDatabase.open(tmp_path / "his.db", readonly=True)
    p1 = ViewPoller("hospital/images", VIEW, db1, state, batch=2, interval_s=0.002, retry_s=60)
    await p1.start(sink)
    for b in range(4):
        insert_batch(src, b)
        await asyncio.sleep(0.003)
    await until(lambda: attempts.get(x_row, 0) >= 1, "the failing row")
    await p1.stop()
    await db1.close()
    assert received == expected[: expected.index(x_row)], "nothing past the unacknowledged row"

    # rows inserted while no poller runs
    for b in range(4, 8):
        insert_batch(src, b)

    # a second poller over the same files: x_row first, then the rest, one 503 on the way
    fail_x = False
    db2 = await SqliteDatabase.open(tmp_path / "his.db", readonly=True)
    p2 = ViewPoller("hospital/images", VIEW, db2, state, batch=2, interval_s=0.002, retry_s=0.002)
    await p2.start(sink)
    for b in range(8, 12):
        insert_batch(src, b)
        await asyncio.sleep(0.003)
    await until(lambda: len(received) == len(expected), "every row")
    await p2.stop()

    assert received == expected
    assert attempts[x_row] == 2 and attempts[y_row] == 2
    assert all(n == 1 for sop, n in attempts.items() if sop not in (x_row, y_row))

    # a third start finds nothing new: the saved cursor is the last acknowledged row
    p3 = ViewPoller("hospital/images", VIEW, db2, state)
    assert await p3.poll_once(sink) is True
    assert p3.cursor == ["2024-05-11 08:11:00", expected[-1]]
    await p3.stop()
    await db2.close()
    assert received == expected
    src.close()


async def test_a_hung_sink_is_cut_off_at_stop_and_the_row_comes_back(tmp_path: Path) -> None:
    src = make_source(tmp_path / "his.db")
    insert_batch(src, 0)
    state = tmp_path / "state.db"
    started = asyncio.Event()

    async def hung(msg: InboundMessage) -> Reply:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    db = await SqliteDatabase.open(tmp_path / "his.db")
    p = ViewPoller("hospital/images", VIEW, db, state)
    await p.start(hung)
    await started.wait()
    await p.stop(timeout_s=0.05)
    got: list[str] = []

    async def ok(msg: InboundMessage) -> Reply:
        assert isinstance(msg.body, dict)
        got.append(msg.body["INSTANCESOPIUID"])
        return Reply(b"{}")

    again = ViewPoller("hospital/images", VIEW, db, state)
    assert await again.poll_once(ok)
    assert got == [batch_rows(0)[0][0]]
    await again.stop()  # its state file closed here, not by the garbage collector after the loop has gone
    await db.close()
    src.close()


async def test_two_pollers_keep_separate_cursors_in_one_state_file(tmp_path: Path) -> None:
    store = await CursorStore.open(tmp_path / "s.db")
    await store.save("a", ["2024-01-01 00:00:00", "k1"])
    await store.save("b", [dt.datetime(2024, 1, 2, 3, 4, 5), Decimal("7.50"), b"\x00\xff", None])
    assert await store.load("a") == ["2024-01-01 00:00:00", "k1"]
    assert await store.load("b") == [dt.datetime(2024, 1, 2, 3, 4, 5), Decimal("7.50"), b"\x00\xff", None]
    assert await store.load("c") is None
    await store.close()


def test_keyset_sql_is_portable_and_quoted() -> None:
    sql, params = keyset_select("dbo.v_web_jcjg", ["A", "B"], ["W", "K"], ["w0", "k0"], 50)
    assert sql == ('SELECT "A", "B" FROM "dbo"."v_web_jcjg" WHERE (("W" > :p0) OR ("W" = :p0 AND "K" > :p1)) ORDER BY "W", "K" LIMIT 50')
    assert params == {"p0": "w0", "p1": "k0"}
    assert keyset_select("v", None, ["K"], None, 5, dialect="oracle")[0] == 'SELECT * FROM "v" ORDER BY "K" FETCH FIRST 5 ROWS ONLY'
    assert keyset_select("v", None, ["K"], None, 5, dialect="mssql")[0].endswith("OFFSET 0 ROWS FETCH NEXT 5 ROWS ONLY")
    for bad in ('v"; DROP TABLE x; --', "v w", "1v", ""):
        with pytest.raises(ViewError, match="not a plain name"):
            quote(bad)


def test_cursor_columns_need_a_key_that_breaks_ties() -> None:
    assert cursor_columns(VIEW) == ["CREATEDTIME", "INSTANCESOPIUID"]
    assert cursor_columns(ViewBinding(name="V_PACS_RESULT", key=["RepNo"])) == ["RepNo"]
    with pytest.raises(ViewError, match="no key"):
        cursor_columns(ViewBinding(name="v", watermark="T"))
    with pytest.raises(ViewError, match="lacks key"):
        cursor_columns(ViewBinding(name="v", key=["K"], watermark="T", order_by=["T"]))
    with pytest.raises(ViewError, match="start with the watermark"):
        cursor_columns(ViewBinding(name="v", key=["K"], watermark="T", order_by=["K", "T"]))


def test_driver_values_become_the_specs_formats(real_specs: SpecSet) -> None:
    fields = real_specs.interface("xinjiang_mr/v_web_jcjg").request.node.children  # type: ignore[union-attr]
    assert fields is not None
    assert to_message(dt.datetime(2024, 5, 11, 8, 40, 12), fields["CREATEDTIME"]) == "2024-05-11 08:40:12"
    assert to_message(Decimal("526788"), fields["FILESIZE"]) == 526788
    assert to_message(1, fields["SERIESNO"]) == "1"
    assert format_java(dt.datetime(2024, 5, 11, 8, 40, 12, 345000), "yyyyMMdd'T'HHmmss.SSS") == "20240511T084012.345"
    assert decode_cursor(encode_cursor([dt.date(2024, 1, 2), 3, 1.5])) == [dt.date(2024, 1, 2), 3, 1.5]


JCJG = {
    "FILEPATH": "/spool/syn/1.dcm",
    "CREATEDTIME": "2024-05-11 08:40:12",
    "STUDIUIID": "1.2.826.0.1.3680043.99.1",
    "STUDYDATE": "2024-05-11 08:17:34",
    "SERIESIUID": "1.2.826.0.1.3680043.99.1.1",
    "SERIESNO": "1",
    "INSTANCESOPIUID": "1.2.826.0.1.3680043.99.1.1.1",
    "INSTANCEINSTNO": "1",
    "PATIENTNAME": "SYNTHETIC^PATIENT",
    "PATIENTSEX": "1",
    "ACCESS_NO": "SYNACC0001",
    "PATIENT_ID": "SYN0001",
    "MODALITY": "CT",
    "INSTITUTIONNAME": "Synthetic Hospital",
    "INSTITUTIONCODE": "000000000",
    "FILESIZE": 1234,
}


async def test_xinjiang_pacs_views_served_from_the_spec_and_read_back_by_a_poller(tmp_path: Path, real_specs: SpecSet) -> None:
    jcjg, jctj = real_specs.interface("xinjiang_mr/v_web_jcjg"), real_specs.interface("xinjiang_mr/v_web_jctj")
    store = await ViewStore.open(tmp_path / "pacs-views.db", [jcjg, jctj])

    second = {**JCJG, "INSTANCESOPIUID": JCJG["INSTANCESOPIUID"][:-1] + "2", "INSTANCEINSTNO": "2"}
    second.pop("CREATEDTIME")  # stamped by the store
    assert await store.upsert(jcjg.qualified_id, [JCJG, second]) == 2
    assert await store.upsert(jcjg.qualified_id, [{**JCJG, "FILESIZE": 4321}]) == 1  # same key: updated

    # a reader (the platform) sees exactly the spec's columns, in the spec's order
    reader = sqlite3.connect(f"file:{tmp_path / 'pacs-views.db'}?mode=ro", uri=True)
    cur = reader.execute('SELECT * FROM "v_web_jcjg" ORDER BY "INSTANCEINSTNO"')
    assert [d[0] for d in cur.description] == list(jcjg.request.node.children)  # type: ignore[union-attr]
    rows = cur.fetchall()
    assert len(rows) == 2 and rows[0][-1] == 4321
    stamped = rows[1][1]
    assert dt.datetime.strptime(stamped, "%Y-%m-%d %H:%M:%S")

    with pytest.raises(ViewError, match=r"row 0: view v_web_jcjg: row refused: .*PATIENTSEX: code"):
        await store.upsert(jcjg.qualified_id, [{**JCJG, "PATIENTSEX": "M"}])
    with pytest.raises(ViewError, match=r"unknown column\(s\) \['WARD'\]"):
        await store.upsert(jcjg.qualified_id, [{**JCJG, "WARD": "3"}])
    with pytest.raises(ViewError, match="no served view"):
        await store.upsert("xinjiang_mr/GetExamInfo", [JCJG])

    # the platform side polls the served view; every row validates against the spec
    seen: list[dict[str, object]] = []

    async def platform(msg: InboundMessage) -> Reply:
        res = jcjg.validate_request(msg.body)
        assert res.valid, res.errors
        assert isinstance(msg.body, dict)
        seen.append(msg.body)
        return Reply(b"{}")

    poller = ViewPoller.for_interface(jcjg, store.db, tmp_path / "platform-state.db")
    assert await poller.poll_once(platform)
    assert [r["INSTANCEINSTNO"] for r in seen] == ["1", "2"]
    await poller.stop()

    study = {
        "PATIENT_ID": "SYN0001",
        "PATIENTNAME": "SYNTHETIC^PATIENT",
        "MODALITY": "CT",
        "ACCESS_NO": "SYNACC0001",
        "STUDIUIID": JCJG["STUDIUIID"],
        "STUDYTIME": "2024-05-11 08:17:34",
        "MODIFYTIME": "2024-05-11 08:40:12",
        "INSTITUTIONNAME": "Synthetic Hospital",
        "INSTITUTIONCODE": "000000000",
        "FILESIZE": 5555,
        "INSTANCECOUNT": "2",
    }
    assert await store.upsert(jctj.qualified_id, [study]) == 1
    assert await store.delete(jcjg.qualified_id, [[JCJG["INSTANCESOPIUID"]]]) == 1
    assert reader.execute('SELECT COUNT(*) FROM "v_web_jcjg"').fetchone() == (1,)
    assert reader.execute('SELECT "INSTANCECOUNT" FROM "v_web_jctj"').fetchone() == ("2",)
    reader.close()
    await store.close()

    # reopening keeps the rows (the table is created only if absent)
    store = await ViewStore.open(tmp_path / "pacs-views.db", [jcjg, jctj])
    assert await store.db.fetch_after("v_web_jctj", None, ["STUDIUIID"], None, 10) != []
    await store.close()


def test_row_ddl_refuses_what_a_row_cannot_hold(real_specs: SpecSet) -> None:
    fields = real_specs.interface("xinjiang_mr/v_web_jctj").request.node.children  # type: ignore[union-attr]
    assert fields is not None
    ddl = table_ddl("v_web_jctj", fields, ["STUDIUIID"], "v_web_jctj__rows")
    assert '"FILESIZE" NUMERIC NOT NULL' in ddl[0] and 'PRIMARY KEY ("STUDIUIID")' in ddl[0]
    with pytest.raises(ViewError, match="not fields of the row"):
        table_ddl("v", fields, ["NOPE"], "v__rows")
    with pytest.raises(ViewError, match="no key"):
        table_ddl("v", fields, [], "v__rows")


async def test_pe_system_view_of_what_a_query_returns_is_served_from_the_response_rows(tmp_path: Path, real_specs: SpecSet) -> None:
    """pe_system's V_PACS_ApplyInfo holds the rows pacs_getApplyInfo returns: the store takes the
    columns from the response list and validates each row against its item fields."""
    ci = real_specs.interface("pe_system/pacs_getApplyInfo")
    example = next(e for e in ci.spec.examples or [] if e.part == "response" and e.valid)
    (row,) = example.body["data"]
    store = await ViewStore.open(tmp_path / "pe.db", [ci])
    assert await store.upsert(ci.qualified_id, [row]) == 1
    bad = {k: v for k, v in row.items() if k != "IDCardnum"}
    with pytest.raises(ViewError, match="IDCardnum: required"):
        await store.upsert(ci.qualified_id, [bad])
    (got,) = await store.db.fetch_after("V_PACS_ApplyInfo", None, ["peCardnum", "applyNo"], None, 10)
    assert got["peCardnum"] == row["peCardnum"] and got["applyNo"] == row["applyNo"]
    await store.close()


async def test_a_window_goes_to_a_sink_that_takes_many_at_once_and_its_refusals_come_back(tmp_path: Path) -> None:
    """A sink with `many` gets each window in one call; a row it could not take (an exception in its
    place) holds the cursor there, and the next poll offers it again with the rows after it."""
    src = make_source(tmp_path / "his.db")
    for b in range(6):
        insert_batch(src, b)
    expected = [sop for b in range(6) for sop, _ in batch_rows(b)]
    refuse = {expected[5]}
    calls: list[int] = []
    taken: list[str] = []

    async def one(msg: InboundMessage) -> Reply:
        raise AssertionError("a sink with many is given whole windows")

    async def many(msgs: list[InboundMessage]) -> list[Reply | Exception]:
        calls.append(len(msgs))
        out: list[Reply | Exception] = []
        for m in msgs:
            assert isinstance(m.body, dict) and m.meta["cursor"]["INSTANCESOPIUID"] == m.body["INSTANCESOPIUID"]
            sop = m.body["INSTANCESOPIUID"]
            if sop in refuse:
                out.append(RuntimeError("journal unavailable"))
            else:
                taken.append(sop)
                out.append(Reply(b"{}"))
        return out

    one.many = many  # type: ignore[attr-defined]
    db = await SqliteDatabase.open(tmp_path / "his.db", readonly=True)
    p = ViewPoller("hospital/images", VIEW, db, tmp_path / "state.db", window=4)
    assert await p.poll_once(one) is False
    assert calls[:2] == [4, 4] and set(taken) >= set(expected[:5])
    assert p.cursor is not None and p.cursor[1] == expected[4]  # just before the refused row
    refuse.clear()
    taken.clear()
    assert await p.poll_once(one) is True
    assert taken[0] == expected[5] and set(taken) == set(expected[5:])
    assert p.cursor is not None and p.cursor[1] == expected[-1]
    await p.stop()
    await db.close()
    src.close()


async def test_the_cursor_is_written_at_most_every_so_often_and_always_at_the_end(tmp_path: Path) -> None:
    """While rows flow the state file is written by SAVE_EVERY_S, not per window; what a poll (or a
    poller stopped midway) acknowledged is written when it ends, so a restart resumes right there."""
    from adapters import dbview

    src = make_source(tmp_path / "his.db")
    for b in range(60):
        insert_batch(src, b)
    rows = [sop for b in range(60) for sop, _ in batch_rows(b)]
    state = tmp_path / "state.db"

    async def ok(msg: InboundMessage) -> Reply:
        await asyncio.sleep(0)
        return Reply(b"{}")

    async def writes() -> int:
        c = sqlite3.connect(state)
        try:
            return int(c.execute("SELECT delivered FROM view_cursor").fetchone()[0])  # counts the writes
        finally:
            c.close()

    db = await SqliteDatabase.open(tmp_path / "his.db", readonly=True)
    p = ViewPoller("hospital/images", VIEW, db, state, window=2, batch=10)
    started = asyncio.get_running_loop().time()
    assert await p.poll_once(ok) is True
    took = asyncio.get_running_loop().time() - started
    assert await writes() <= 2 + took / dbview.SAVE_EVERY_S < len(rows) / 2  # not one per window
    store = await CursorStore.open(state)
    assert await store.load(p.name) == p.cursor and p.cursor is not None
    await store.close()
    assert p.cursor[1] == rows[-1]
    await p.stop()

    # stopped while rows flow: the stop writes what was acknowledged, and the next poller starts after it
    for b in range(60, 200):
        insert_batch(src, b)
    seen: list[str] = []

    async def slow(msg: InboundMessage) -> Reply:
        assert isinstance(msg.body, dict)
        await asyncio.sleep(0.002)
        seen.append(msg.body["INSTANCESOPIUID"])
        return Reply(b"{}")

    p2 = ViewPoller("hospital/images", VIEW, db, state, window=2, batch=10, interval_s=60)
    await p2.start(slow)
    await until(lambda: len(seen) > 40, "rows flowing")
    await p2.stop()
    at_stop = p2.cursor
    assert at_stop is not None and at_stop[1] in seen
    p3 = ViewPoller("hospital/images", VIEW, db, state)
    await p3.open()
    assert p3.cursor == at_stop
    await p3.stop()
    await db.close()
    src.close()

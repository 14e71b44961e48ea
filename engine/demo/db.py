"""The sample hospital's database: LIS and RIS base tables behind the views the bridge polls.

The views are what hospitals expose to integration engines (V_LIS_REPORT_RESULT joins report
headers to result lines, one row per line; V_RIS_EXAM_REPORT is one row per report), so the demo's
poller reads a real view, not a table shaped for it. Rows come in as the messages the poller will
hand out (base64 PDFs), and are stored as a LIS would (BLOBs).
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LIS_LINE_COLUMNS = ("ITEM_SEQ", "ITEM_CODE", "ITEM_NAME", "RESULT", "RESULT_TYPE", "UNIT", "REF_LOW", "REF_HIGH",
                    "REF_RANGE", "RESULT_FLAG", "CRITICAL_FLAG", "RECOGNIZABLE")
BLOB_COLUMNS = frozenset({"REPORT_PDF"})


def _sqltype(value: Any) -> str:
    if isinstance(value, bool | int):
        return "INTEGER"
    if isinstance(value, float):
        return "REAL"
    return "TEXT"


def _column_defs(columns: Sequence[str], sample: dict[str, Any]) -> str:
    return ", ".join(f"{c} {'BLOB' if c in BLOB_COLUMNS else _sqltype(sample.get(c))}" for c in columns)


def _stored(row: dict[str, Any], columns: Sequence[str]) -> list[Any]:
    return [base64.b64decode(row[c]) if c in BLOB_COLUMNS and row.get(c) else row.get(c) for c in columns]


def write_database(path: Path, lab_reports: Sequence[Sequence[dict[str, Any]]], exam_reports: Sequence[dict[str, Any]]) -> None:
    """(Re)create `path` with the LIS and RIS tables, their rows and the two views."""
    path.unlink(missing_ok=True)
    first_row = lab_reports[0][0]
    header = [c for c in first_row if c not in LIS_LINE_COLUMNS]
    lines = ["REPORT_NO", *LIS_LINE_COLUMNS]
    exam_cols = list(exam_reports[0])
    con = sqlite3.connect(path)
    try:
        con.execute(f"CREATE TABLE LIS_REPORT ({_column_defs(header, first_row)}, PRIMARY KEY (REPORT_NO))")
        con.execute(f"CREATE TABLE LIS_RESULT ({_column_defs(lines, first_row)}, PRIMARY KEY (REPORT_NO, ITEM_SEQ))")
        view_cols = ", ".join(f"r.{c}" if c not in LIS_LINE_COLUMNS else f"i.{c}" for c in first_row)
        con.execute(f"CREATE VIEW V_LIS_REPORT_RESULT AS SELECT {view_cols} FROM LIS_REPORT r "
                    "JOIN LIS_RESULT i ON i.REPORT_NO = r.REPORT_NO")
        con.execute(f"CREATE TABLE RIS_EXAM_REPORT ({_column_defs(exam_cols, exam_reports[0])}, PRIMARY KEY (REPORT_ID))")
        con.execute(f"CREATE VIEW V_RIS_EXAM_REPORT AS SELECT {', '.join(exam_cols)} FROM RIS_EXAM_REPORT")
        for rows in lab_reports:
            con.execute(f"INSERT INTO LIS_REPORT VALUES ({', '.join('?' * len(header))})", _stored(rows[0], header))
            con.executemany(f"INSERT INTO LIS_RESULT VALUES ({', '.join('?' * len(lines))})", [_stored(r, lines) for r in rows])
        con.executemany(f"INSERT INTO RIS_EXAM_REPORT VALUES ({', '.join('?' * len(exam_cols))})",
                        [_stored(r, exam_cols) for r in exam_reports])
        con.commit()
    finally:
        con.close()

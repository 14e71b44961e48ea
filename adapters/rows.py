"""Database values <-> message values for `row` bodies.

Drivers hand back `datetime`, `Decimal`, `bytes`; a row message carries what the spec says, so
dates are rendered in the field's own format ('yyyy-MM-dd HH:mm:ss'), the one the validator checks.
The cursor codec keeps a watermark's exact type across a restart (a `datetime` stays one, so the
next keyset query compares like with like).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from engine.spec.nodes import Node

_JAVA = re.compile(r"'([^']*)'|yyyy|MM|dd|HH|mm|ss|SSS")


def format_java(value: dt.date | dt.time, pattern: str) -> str:
    """Render with a document's Java/.NET pattern (the subset engine.spec.dates understands)."""
    g = lambda name: getattr(value, name, 0)  # noqa: E731 - a date has no hour, a time no year
    parts = {
        "yyyy": f"{g('year'):04d}",
        "MM": f"{g('month'):02d}",
        "dd": f"{g('day'):02d}",
        "HH": f"{g('hour'):02d}",
        "mm": f"{g('minute'):02d}",
        "ss": f"{g('second'):02d}",
        "SSS": f"{g('microsecond') // 1000:03d}",
    }
    return _JAVA.sub(lambda m: m.group(1) if m.group(1) is not None else parts[m.group(0)], pattern)


def to_message(value: Any, node: Node | None) -> Any:
    """One column value as the row message carries it."""
    if isinstance(value, (dt.date, dt.time)):
        if node is not None and node.date is not None:
            return format_java(value, node.date.spec)
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, Decimal):
        if node is not None and node.kind == "string":
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        if node is not None and node.binary_format == "hex":
            return bytes(value).hex()
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, bool):
        return value
    if node is not None and node.kind == "string" and isinstance(value, (int, float)):
        return str(value)
    return value


def row_to_message(row: Mapping[str, Any], fields: Mapping[str, Node] | None) -> dict[str, Any]:
    f = fields or {}
    return {k: to_message(v, f.get(k)) for k, v in row.items()}


_SHAPES = 256
"""Distinct value-type shapes kept per RowPlan (a view's rows come in a handful: NULL here or there)."""
_AS_IS: frozenset[type] = frozenset({str, type(None), bool})
_AS_IS_OR_NUMBER: frozenset[type] = _AS_IS | {int, float}


class RowPlan:
    """`row_to_message` for every row of a view read as value tuples, the per-column work done once.

    Most values pass as they are (text, NULL, numbers for numeric fields): which ones do not depends
    only on the columns and on the Python types of the row's values, so the columns to convert are
    worked out once per shape of types and every other value goes straight into the message dict.
    """

    def __init__(self, fields: Mapping[str, Node] | None) -> None:
        self.fields = fields or {}
        self._columns: tuple[str, ...] | None = None
        self._take: list[int] | None = None
        self._keep: list[frozenset[type]] = []
        self._fixes: dict[tuple[type, ...], list[tuple[int, str, Node | None]]] = {}

    def _bind(self, columns: tuple[str, ...]) -> None:
        first = {c: i for i, c in reversed(list(enumerate(columns)))}
        # a repeated name (a driver's, not a view's) keeps its first value, as a name lookup does
        self._take = None if len(first) == len(columns) else sorted(first.values())
        f = self.fields
        self._keep = [_AS_IS if (n := f.get(c)) is not None and n.kind == "string" else _AS_IS_OR_NUMBER for c in columns]
        self._fixes = {}
        self._columns = columns

    def message(self, columns: tuple[str, ...], values: Sequence[Any]) -> dict[str, Any]:
        if columns is not self._columns and columns != self._columns:
            self._bind(columns)
        take = self._take
        msg = dict(zip(columns, values, strict=True)) if take is None else {columns[i]: values[i] for i in take}
        shape = tuple(map(type, values))
        fixes = self._fixes.get(shape)
        if fixes is None:
            fixes = [(i, columns[i], self.fields.get(columns[i])) for i in (range(len(columns)) if take is None else take)
                     if shape[i] not in self._keep[i]]
            if len(self._fixes) >= _SHAPES:
                self._fixes.clear()
            self._fixes[shape] = fixes
        for i, name, node in fixes:
            msg[name] = to_message(values[i], node)
        return msg


def to_column(value: Any, node: Node | None) -> Any:
    """One message value as the store's column holds it (dates as their spec text, bools as 0/1)."""
    if isinstance(value, (dt.date, dt.time)) and node is not None and node.date is not None:
        return format_java(value, node.date.spec)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


# --- cursor codec: exact types survive the state file -------------------------------------------


def encode_cursor(values: Sequence[Any]) -> bytes:
    out: list[list[Any]] = []
    for v in values:
        if v is None or isinstance(v, (bool, int, float, str)):
            out.append(["v", v])
        elif isinstance(v, dt.datetime):
            out.append(["dt", v.isoformat()])
        elif isinstance(v, dt.date):
            out.append(["d", v.isoformat()])
        elif isinstance(v, dt.time):
            out.append(["t", v.isoformat()])
        elif isinstance(v, Decimal):
            out.append(["dec", str(v)])
        elif isinstance(v, (bytes, bytearray, memoryview)):
            out.append(["b", bytes(v).hex()])
        else:
            raise TypeError(f"cannot keep a {type(v).__name__} watermark in the cursor state")
    return msgspec.json.encode(out)


def decode_cursor(raw: bytes | str) -> list[Any]:
    decoders = {
        "v": lambda s: s,
        "dt": dt.datetime.fromisoformat,
        "d": dt.date.fromisoformat,
        "t": dt.time.fromisoformat,
        "dec": Decimal,
        "b": bytes.fromhex,
    }
    return [decoders[tag](v) for tag, v in msgspec.json.decode(raw)]

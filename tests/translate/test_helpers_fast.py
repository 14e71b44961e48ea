"""The per-record helpers made cheaper give what their straightforward versions give.

The oracles below are the previous implementations, kept here verbatim in substance: a date
re-format as regex match + calendar check + join over the output's parts, and the ID number's
check digit as the weighted sum engine/spec/checks.py computes."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from engine.spec.checks import id_card_check_digit
from engine.spec.dates import compile_format
from engine.translate.expr import id_card_birthday
from engine.translate.formats import _GROUP, ConvertError, _from_datetime, _parts, _zero, date_converter


def slow_date_converter(fmt_in: str | list[str], fmt_out: str) -> Callable[[Any], str]:
    ins = [fmt_in] if isinstance(fmt_in, str) else list(fmt_in)
    parsers = [(re.compile(compile_format(f).regex), compile_format(f).check) for f in ins]
    out = _parts(fmt_out)
    specs = " or ".join(repr(f) for f in ins)

    def emit(g: dict[str, str]) -> str:
        return "".join((g.get(_GROUP[t]) or _zero(t)) if is_tok else t for is_tok, t in out)

    def convert(value: Any) -> str:
        if isinstance(value, dt.datetime):
            return emit(_from_datetime(value))
        if isinstance(value, dt.date):
            return emit({"y": f"{value.year:04d}", "mo": f"{value.month:02d}", "d": f"{value.day:02d}"})
        if not isinstance(value, str):
            raise ConvertError(f"expected a date string in format {specs}, got {type(value).__name__} {value!r}")
        s = value.strip()
        for rx, check in parsers:
            m = rx.match(s)
            if m is not None and check(s):
                return emit(m.groupdict())
        raise ConvertError(f"{value!r} is not a valid date in format {specs}")

    return convert


def slow_id_card_birthday(id_no: Any) -> str | None:
    s = str(id_no or "").strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or id_card_check_digit(s[:17]) != s[17]:
        return None
    try:
        return dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14])).isoformat()
    except ValueError:
        return None


def outcome(fn: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    try:
        return "value", fn(value)
    except (ConvertError, ValueError) as exc:
        return type(exc).__name__, str(exc)


FORMATS = [
    (["yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss"], "yyyy-MM-dd"),
    ("yyyyMMddHHmmss", "yyyy-MM-dd HH:mm:ss"),
    ("yyyyMMdd", "yyyy-MM-dd HH:mm:ss.SSS"),
    ("yyyy-MM-dd HH:mm:ss.SSS", "yyyyMMddHHmmssSSS"),
    (["HH:mm", "HH:mm:ss"], "HH'h'mm"),
    ("MM/dd", "yyyy-MM-dd"),
    ("yyyy'{'MM'}'dd", "'{0}' dd.MM.yyyy '}'"),
]


def _dates(rnd: random.Random) -> list[Any]:
    values: list[Any] = ["2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "2024-04-31", "2024-13-01", "2024-05-11 08:00:00",
                         " 2024-05-11\n", "2024-05-11\n", "20240511083000", "20240230", "20240229", "02/29", "02/30", "12:30", "24:00",
                         "08:15:59", "2024{05}11", "2024-05-11 08:00:00.123", "２０２４-05-11", "2024-0٥-11", "", "x", None, 20240511,
                         dt.datetime(2024, 5, 11, 8, 1, 2, 345000), dt.date(2024, 2, 29)]
    for _ in range(4000):
        y, mo, d = rnd.randint(0, 2999), rnd.randint(0, 13), rnd.randint(0, 32)
        h, mi, s = rnd.randint(0, 25), rnd.randint(0, 61), rnd.randint(0, 61)
        values += [f"{y:04d}-{mo:02d}-{d:02d}", f"{y:04d}{mo:02d}{d:02d}{h:02d}{mi:02d}{s:02d}", f"{mo:02d}/{d:02d}",
                   f"{y:04d}{mo:02d}{d:02d}", f"{y:04d}{{{mo:02d}}}{d:02d}",
                   f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}.{rnd.randint(0, 999):03d}", f"{h:02d}:{mi:02d}"]
    return values


@pytest.mark.parametrize(("fmt_in", "fmt_out"), FORMATS)
def test_date_converter_matches_the_straightforward_one(fmt_in: str | list[str], fmt_out: str) -> None:
    fast, slow = date_converter(fmt_in, fmt_out), slow_date_converter(fmt_in, fmt_out)
    values = _dates(random.Random(11))
    differ = [v for v in values if outcome(fast, v) != outcome(slow, v)]
    assert differ == []
    assert sum(outcome(fast, v)[0] == "value" for v in values) > 100  # valid dates were among them


def _with_check(first17: str) -> str:
    return first17 + id_card_check_digit(first17)


def test_id_card_birthday_matches_the_weighted_sum() -> None:
    rnd = random.Random(5)
    ids: list[Any] = ["11010519491231002X", "11010519491231002x", " 11010519491231002X ", "110105194912310021", "11010519490230002X",
                      "1101051949123100", "", None, 0, 110105194912310020, "١١٠١٠٥١٩٤٩١٢٣١٠٠٢X", "²10105194912310021"]
    for _ in range(20000):
        first17 = "".join(rnd.choice("0123456789") for _ in range(6)) + f"{rnd.randint(1800, 2100)}{rnd.randint(0, 13):02d}"
        first17 += f"{rnd.randint(0, 32):02d}" + "".join(rnd.choice("0123456789") for _ in range(3))
        ids += [_with_check(first17), first17 + rnd.choice("0123456789X")]
    differ = [i for i in ids if outcome(id_card_birthday, i) != outcome(slow_id_card_birthday, i)]
    assert differ == []
    assert sum(outcome(id_card_birthday, i)[1] is not None for i in ids) > 5000

"""Date and number conversions, compiled once per rule.

Dates use the same Java-style letters as the specs (engine/spec/dates.py), so a mapping says
`{in: yyyyMMddHHmmss, out: "yyyy-MM-dd HH:mm:ss"}` in the documents' own notation. Parsing
reuses the spec compiler's regex (and its calendar rule: no Feb 30); for each input format the
output is a precomputed `str.format` template over the match's groups, so converting a value is
one regex match and one format call.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from engine.spec.dates import FormatError, compile_format

_TOKS = ("yyyy", "SSS", "MM", "dd", "HH", "mm", "ss")
_GROUP = {"yyyy": "y", "MM": "mo", "dd": "d", "HH": "h", "mm": "mi", "ss": "s", "SSS": "ms"}
_ROUND = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "down": ROUND_DOWN}


class ConvertError(ValueError):
    """A value does not fit the rule; the caller adds field and record path."""


def _parts(fmt: str) -> list[tuple[bool, str]]:
    """(is_token, text) parts of a format; raises FormatError on unknown letters."""
    compile_format(fmt)  # validates letters and quotes
    out: list[tuple[bool, str]] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "'":
            end = fmt.index("'", i + 1)
            out.append((False, fmt[i + 1 : end]))
            i = end + 1
            continue
        for tok in _TOKS:
            if fmt.startswith(tok, i):
                out.append((True, tok))
                i += len(tok)
                break
        else:
            out.append((False, fmt[i]))
            i += 1
    return out


def _template(out: list[tuple[bool, str]], groups: Mapping[str, int]) -> str:
    """fmt_out as a `str.format` template over the groups of one input format's match: a token the
    input has is its group (every token group is fixed-width, so never empty), one it lacks its zero."""
    text = ""
    for is_tok, t in out:
        if not is_tok:
            text += t.replace("{", "{{").replace("}", "}}")
        elif _GROUP[t] in groups:
            text += f"{{{groups[_GROUP[t]] - 1}}}"
        else:
            text += _zero(t)
    return text


def date_converter(fmt_in: str | list[str], fmt_out: str) -> Callable[[Any], str]:
    """A function re-formatting a date string (or a datetime/date object) from fmt_in to fmt_out.

    Output fields the input lacks are zero (a date-only input gives 00:00:00), which is what the
    platforms expect when a source column holds only the day."""
    ins = [fmt_in] if isinstance(fmt_in, str) else list(fmt_in)
    out = _parts(fmt_out)
    parsers = []
    for f in ins:
        rx = re.compile(compile_format(f).regex)
        g = rx.groupindex
        day = (g["d"] - 1, g["y"] - 1 if "y" in g else None, g["mo"] - 1 if "mo" in g else None) if "d" in g else None
        parsers.append((rx.fullmatch, _template(out, g), day))
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
        for fullmatch, template, day in parsers:
            m = fullmatch(s)
            if m is None:
                continue
            g = m.groups()
            if day is not None:  # the spec checker's calendar rule (engine/spec/dates.py): no Feb 30
                d, y, mo = day
                if int(g[d]) > 28 and int(g[d]) > calendar.monthrange(int(g[y]) if y is not None else 2000,
                                                                       int(g[mo]) if mo is not None else 1)[1]:
                    continue
            return template.format(*g)
        raise ConvertError(f"{value!r} is not a valid date in format {specs}")

    return convert


def _zero(tok: str) -> str:
    return {"yyyy": "0000", "SSS": "000"}.get(tok, "01" if tok in ("MM", "dd") else "00")


def _from_datetime(v: dt.datetime) -> dict[str, str]:
    return {
        "y": f"{v.year:04d}", "mo": f"{v.month:02d}", "d": f"{v.day:02d}",
        "h": f"{v.hour:02d}", "mi": f"{v.minute:02d}", "s": f"{v.second:02d}", "ms": f"{v.microsecond // 1000:03d}",
    }


def format_now(fmt: str) -> Callable[[dt.datetime], str]:
    """A formatter of datetime objects in a Java-style format (for the `now` helper)."""
    out = _parts(fmt)

    def fmt_dt(v: dt.datetime) -> str:
        g = _from_datetime(v)
        return "".join(g[_GROUP[t]] if is_tok else t for is_tok, t in out)

    return fmt_dt


def number_converter(scale: int | None, as_: str, rounding: str) -> Callable[[Any], Any]:
    """Round to `scale` digits after the point; emit int (scale 0), float, or a fixed-point string."""
    q = Decimal(1).scaleb(-scale) if scale is not None else None
    mode = _ROUND[rounding]
    as_string = as_ == "string"
    whole_ok = scale is None or scale == 0

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ConvertError(f"expected a number, got a boolean {value!r}")
        try:
            d = Decimal(value.strip()) if isinstance(value, str) else Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            raise ConvertError(f"{value!r} is not a number") from None
        if not d.is_finite():
            raise ConvertError(f"{value!r} is not a finite number")
        if q is not None:
            d = d.quantize(q, rounding=mode)
        if as_string:
            return format(d, "f")
        if whole_ok and d == d.to_integral_value():
            return int(d)
        return float(d)

    return convert


def cast(kind: str) -> Callable[[Any], Any]:
    """The final `type:` of a rule."""
    if kind == "string":
        def to_str(v: Any) -> str:
            if isinstance(v, bool):
                return "1" if v else "0"
            if isinstance(v, float) and v == int(v):
                return str(int(v))
            return str(v)
        return to_str
    if kind == "int":
        def to_int(v: Any) -> int:
            try:
                d = Decimal(str(v).strip())
            except InvalidOperation:
                raise ConvertError(f"{v!r} is not an integer") from None
            if d != d.to_integral_value():
                raise ConvertError(f"{v!r} is not an integer")
            return int(d)
        return to_int
    if kind == "number":
        return number_converter(None, "number", "half_up")

    def to_bool(v: Any) -> bool:
        if isinstance(v, bool):
            return v
        s = str(v).strip().lower()
        if s in ("1", "true", "y", "yes", "t"):
            return True
        if s in ("0", "false", "n", "no", "f"):
            return False
        raise ConvertError(f"{v!r} is not a boolean (1/0, true/false, Y/N)")

    return to_bool


__all__ = ["ConvertError", "FormatError", "cast", "date_converter", "format_now", "number_converter"]

"""Date/time formats as the documents write them ('yyyy-MM-dd HH:mm:ss', 'yyyyMMdd'T'HHmmss').

Documents use Java/.NET letters, so specs do too. Each format compiles to a regex with digit
ranges (usable as a msgspec pattern on the fast path) plus a strict checker that also rejects
impossible dates (Feb 30) which a regex cannot see.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass

# token -> (regex, group name)
_TOKENS: dict[str, tuple[str, str | None]] = {
    "yyyy": (r"(?P<y>\d{4})", "y"),
    "MM": (r"(?P<mo>0[1-9]|1[0-2])", "mo"),
    "dd": (r"(?P<d>0[1-9]|[12]\d|3[01])", "d"),
    "HH": (r"(?P<h>[01]\d|2[0-3])", "h"),
    "mm": (r"(?P<mi>[0-5]\d)", "mi"),
    "ss": (r"(?P<s>[0-5]\d)", "s"),
    "SSS": (r"(?P<ms>\d{3})", "ms"),
}
_ORDER = sorted(_TOKENS, key=len, reverse=True)


class FormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class DateFormat:
    spec: str
    regex: str
    check: Callable[[str], bool]
    exact: str
    """A regex (no anchors, no groups) that is exact, calendar included: for the fast path."""


_LEAP = r"(?:\d\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_CASES = (  # (year, month, day) sub-patterns whose union is exactly the valid dates
    (r"\d{4}", r"(?:0[13578]|1[02])", r"(?:0[1-9]|[12]\d|3[01])"),
    (r"\d{4}", r"(?:0[469]|11)", r"(?:0[1-9]|[12]\d|30)"),
    (r"\d{4}", "02", r"(?:0[1-9]|1\d|2[0-8])"),
    (_LEAP, "02", "29"),
)
_PLAIN = {"HH": r"(?:[01]\d|2[0-3])", "mm": r"[0-5]\d", "ss": r"[0-5]\d", "SSS": r"\d{3}"}


def _exact(parts: list[tuple[str, str]]) -> str:
    """parts: (kind, text) with kind 'lit' or a token; builds the calendar-exact regex."""
    toks = {t for k, t in parts if k == "tok"}
    cases = _CASES if {"yyyy", "MM", "dd"} <= toks else ((r"\d{4}", r"(?:0[1-9]|1[0-2])", r"(?:0[1-9]|[12]\d|3[01])"),)
    alts = []
    for y, mo, d in cases:
        sub = {"yyyy": y, "MM": mo, "dd": d, **_PLAIN}
        alts.append("".join(re.escape(t) if k == "lit" else sub[t] for k, t in parts))
    return "(?:" + "|".join(alts) + ")"


def compile_format(fmt: str) -> DateFormat:
    """Compile a Java-style date format. Raises FormatError on an unknown letter."""
    out: list[str] = []
    parts: list[tuple[str, str]] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "'":
            end = fmt.find("'", i + 1)
            if end < 0:
                raise FormatError(f"unterminated quote in format {fmt!r}")
            out.append(re.escape(fmt[i + 1 : end]))
            parts.append(("lit", fmt[i + 1 : end]))
            i = end + 1
            continue
        for tok in _ORDER:
            if fmt.startswith(tok, i):
                out.append(_TOKENS[tok][0])
                parts.append(("tok", tok))
                i += len(tok)
                break
        else:
            ch = fmt[i]
            if ch.isalpha():
                raise FormatError(f"unknown letter {ch!r} in date format {fmt!r} (use yyyy MM dd HH mm ss SSS, quote literals)")
            out.append(re.escape(ch))
            parts.append(("lit", ch))
            i += 1
    regex = "^" + "".join(out) + "$"
    compiled = re.compile(regex)
    has_day = "d" in compiled.groupindex

    def check(value: str) -> bool:
        m = compiled.fullmatch(value)  # not match: `$` would let a trailing newline through
        if m is None:
            return False
        if has_day:
            g = m.groupdict()
            year = int(g.get("y") or 2000)
            month = int(g.get("mo") or 1)
            if int(g["d"]) > calendar.monthrange(year, month)[1]:
                return False
        return True

    return DateFormat(fmt, regex, check, _exact(parts))


DEFAULT_FORMATS = {"date": "yyyy-MM-dd", "datetime": "yyyy-MM-dd HH:mm:ss", "time": "HH:mm:ss"}

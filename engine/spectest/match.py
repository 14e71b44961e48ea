"""Compare a translated message with a test's expectation, as a list of readable differences.

Each difference names the path in the message (`patient.sex`, `items[1].code`), so a failing test
reads like a diff an integrator can act on, not two JSON blobs to eyeball.
"""

from __future__ import annotations

from typing import Any

import msgspec

Diff = tuple[tuple[Any, ...], str]
"""(path in the expectation, what differed)."""

_MAX = 80


def show(value: Any) -> str:
    """A value as JSON, cut to a readable length."""
    try:
        text = msgspec.json.encode(value).decode("utf-8")
    except (TypeError, msgspec.EncodeError):
        text = repr(value)
    return text if len(text) <= _MAX else f"{text[: _MAX - 12]}...({len(text)} chars)"


def path_str(path: tuple[Any, ...]) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "(message)"


def _same_scalar(want: Any, got: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):  # True == 1 in Python; not in a message
        return type(want) is type(got) and want == got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return want == got
    return type(want) is type(got) and want == got


def _string_diff(want: str, got: str) -> str:
    """Where two long strings part ways (a carried payload, a report text)."""
    if len(want) <= _MAX and len(got) <= _MAX:
        return f"expected {show(want)}, got {show(got)}"
    i = next((k for k, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
    lo = max(0, i - 20)
    return f"strings differ at character {i}: expected ...{show(want[lo : i + 30])}..., got ...{show(got[lo : i + 30])}..."


def compare(want: Any, got: Any, *, exact: bool, path: tuple[Any, ...] = ()) -> list[Diff]:
    """Differences between an expectation and a value. exact=False: objects need only the expected keys."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [(path, f"expected an object, got {show(got)}")]
        out: list[Diff] = []
        for k, w in want.items():
            if k not in got:
                out.append(((*path, k), f"missing (expected {show(w)})"))
            else:
                out.extend(compare(w, got[k], exact=exact, path=(*path, k)))
        extra = [k for k in got if k not in want] if exact else []
        if len(extra) <= 3:
            out.extend(((*path, k), f"unexpected (got {show(got[k])})") for k in extra)
        else:
            names = ", ".join(extra[:8]) + (", ..." if len(extra) > 8 else "")
            out.append((path, f"{len(extra)} unexpected keys: {names}"))
        return out
    if isinstance(want, list):
        if not isinstance(got, list):
            return [(path, f"expected a list of {len(want)}, got {show(got)}")]
        out = []
        for i, (w, g) in enumerate(zip(want, got, strict=False)):
            out.extend(compare(w, g, exact=exact, path=(*path, i)))
        if len(want) != len(got):
            out.append((path, f"expected {len(want)} item(s), got {len(got)}"))
        return out
    if _same_scalar(want, got):
        return []
    if isinstance(want, str) and isinstance(got, str):
        return [(path, _string_diff(want, got))]
    return [(path, f"expected {show(want)}, got {show(got)}")]


def parse_path(text: str) -> tuple[Any, ...]:
    """`a.b[2].c` -> ("a", "b", 2, "c")."""
    out: list[Any] = []
    for part in text.split("."):
        name, _, rest = part.partition("[")
        if name:
            out.append(name)
        while rest:
            idx, _, rest = rest.partition("]")
            out.append(int(idx) if idx.isdigit() else idx)
            rest = rest.removeprefix("[")
    return tuple(out)


def lookup(value: Any, path: tuple[Any, ...]) -> tuple[bool, Any]:
    """(found, value at path)."""
    cur = value
    for p in path:
        in_dict = isinstance(cur, dict) and isinstance(p, str) and p in cur
        in_list = isinstance(cur, list) and isinstance(p, int) and -len(cur) <= p < len(cur)
        if in_dict or in_list:
            cur = cur[p]
        else:
            return False, None
    return True, cur

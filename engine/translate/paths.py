"""Source paths and the scope a rule reads from, compiled to tuples once.

Grammar: `a.b`, `a[0].b`, `[0].COL` (a record that is a list of rows), `$.a` (from the record
root, e.g. the report number inside an item of `each`) and `.` (the current item itself). As in
`each`, one object counts as a one-item list: `[0]` of an object is the object.
Parsing happens at load; reading a record only indexes dicts and lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__bool__": lambda self: False})()
"""No value: the path does not exist in the record (distinct from null)."""

_TOKEN = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


class PathError(ValueError):
    pass


class Scope:
    """Where a rule is evaluated: the record, the current item, and both their paths (for errors)."""

    __slots__ = ("cur", "index", "request", "root", "src", "tgt")

    def __init__(self, root: Any, cur: Any, src: str = "", tgt: str = "", index: int | None = None, request: Any = None) -> None:
        self.root = root
        self.request = request
        """For response mappings: the request (canonical) record the answer belongs to, as `request` in expressions."""
        self.cur = cur
        self.src = src
        """Record path of `cur`, e.g. `items[2]` (empty at the root)."""
        self.tgt = tgt
        """Target path of the object being built, e.g. `strReportInfo.lab_subitem[2]`."""
        self.index = index


def parse(path: str) -> tuple[bool, tuple[str | int, ...]]:
    """`$.a.b[0]` -> (from_root, ('a', 'b', 0)). Raises PathError on a malformed path."""
    text = path.strip()
    from_root = False
    if text == "$":
        return True, ()
    if text == ".":
        return False, ()
    if text.startswith("$."):
        from_root, text = True, text[2:]
    elif text.startswith("$["):
        from_root, text = True, text[1:]
    if not text or text.startswith(".") or text.endswith(".") or ".." in text:
        raise PathError(f"malformed path {path!r}")
    out: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            raise PathError(f"malformed path {path!r} at {text[pos:]!r}")
        pos = m.end()
        out.append(int(m.group(1)) if m.group(1) is not None else m.group(2).strip())
    if pos != len(text):
        raise PathError(f"malformed path {path!r} at {text[pos:]!r}")
    return from_root, tuple(out)


def text(tokens: tuple[str | int, ...], base: str = "") -> str:
    """Tokens back to a readable record path (`items[2].code`), under `base`."""
    s = base
    for t in tokens:
        s += f"[{t}]" if isinstance(t, int) else (f".{t}" if s else t)
    return s


Getter = Callable[[Scope], Any]


def getter(path: str) -> tuple[Getter, Callable[[Scope], str]]:
    """A reader for `path` and a function giving the concrete record path it read (for errors)."""
    from_root, tokens = parse(path)

    def where(scope: Scope) -> str:
        return text(tokens, "" if from_root else scope.src)

    if not tokens:
        if from_root:
            return (lambda s: s.root), where
        return (lambda s: s.cur), where
    if len(tokens) == 1 and isinstance(tokens[0], str):  # the common case: one column / one key
        key = tokens[0]
        if from_root:
            def get_root1(s: Scope) -> Any:
                r = s.root
                return r.get(key, MISSING) if isinstance(r, dict) else MISSING
            return get_root1, where

        def get1(s: Scope) -> Any:
            c = s.cur
            return c.get(key, MISSING) if isinstance(c, dict) else MISSING

        return get1, where

    def get(s: Scope) -> Any:
        v = s.root if from_root else s.cur
        for t in tokens:
            if isinstance(t, int):
                if isinstance(v, dict) and t == 0:
                    continue  # one object counts as a one-item list (a single view row for a list of rows)
                if not isinstance(v, list) or t >= len(v):
                    return MISSING
                v = v[t]
            else:
                if not isinstance(v, dict):
                    return MISSING
                v = v.get(t, MISSING)
                if v is MISSING:
                    return MISSING
        return v

    return get, where


def target_parts(path: str) -> tuple[str, ...]:
    """A target path `patient.name` -> ('patient', 'name'). Targets name fields only: no indices."""
    parts = tuple(p.strip() for p in path.split("."))
    if not path or any(not p or "[" in p or "]" in p for p in parts):
        raise PathError(f"malformed target path {path!r} (dotted field names, no indices)")
    return parts


def put_nested(out: dict[str, Any], parent: tuple[str, ...], name: str, v: Any) -> None:
    """Write `v` at parent/name, making the dicts on the way (replacing a non-dict left by another field)."""
    d = out
    for p in parent:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = d[p] = {}
        d = nxt
    d[name] = v

"""Dotted paths into decoded messages and stored records, with `[]` for "every item of this list".

The same little language as interface `key:` (`strReportInfo.labmaster[].org_code`), so the runtime
(idempotency keys, success fields, token paths) and the twins (record identities, query filters, reply
values) read messages with the paths a spec already uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MISSING: Any = object()


def _parts(path: str) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for seg in path.split("."):
        if not seg:
            continue
        many = seg.endswith("[]")
        out.append((seg[:-2] if many else seg, many))
    return out


def values(obj: Any, path: str) -> list[Any]:
    """Every value at `path`; lists met on the way are walked item by item (with or without `[]`)."""
    cur: list[Any] = [obj]
    for name, _many in _parts(path):
        nxt: list[Any] = []
        for v in cur:
            for item in v if isinstance(v, list) else (v,):
                if isinstance(item, dict) and name in item:
                    nxt.append(item[name])
        cur = nxt
    flat: list[Any] = []
    for v in cur:
        flat.extend(v if isinstance(v, list) else (v,))
    return flat


def get(obj: Any, path: str) -> Any:
    """The one value at `path` (no list walking), or MISSING."""
    if path in ("", "."):
        return obj
    cur = obj
    for name, _many in _parts(path):
        if not isinstance(cur, dict) or name not in cur:
            return MISSING
        cur = cur[name]
    return cur


def present(v: Any) -> bool:
    return v is not MISSING and v is not None and v != ""


def list_prefix(paths: Iterable[str]) -> str | None:
    """The path of the list whose items a key iterates: `a.b[]` of `a.b[].c` (the first such path)."""
    for p in paths:
        if "[]" in p:
            return p[: p.index("[]")]
    return None


def relative(path: str, prefix: str) -> str:
    """`org_code` from `strReportInfo.labmaster[].org_code` relative to `strReportInfo.labmaster`."""
    for head in (prefix + "[].", prefix + "."):
        if path.startswith(head):
            return path[len(head) :]
    return path


def _text(v: Any) -> str:
    return "" if v is MISSING or v is None else str(v)


def key_text(parts: Iterable[Any]) -> str:
    return "|".join(_text(p) for p in parts)


def natural_keys(obj: Any, paths: list[str] | None) -> list[str]:
    """The natural key(s) of a message: one per item of the list a `[]` path walks, else one."""
    if not paths:
        return []
    prefix = list_prefix(paths)
    if prefix is None:
        return [key_text(_first(obj, p) for p in paths)]
    items = values(obj, prefix)
    keys = []
    for item in items:
        keys.append(key_text(_first(item, relative(p, prefix)) if p.startswith(prefix + "[]") else _first(obj, p) for p in paths))
    return keys


def _first(obj: Any, path: str) -> Any:
    got = values(obj, path)
    return got[0] if got else MISSING

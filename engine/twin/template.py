"""Reply templates: the `twin.reply` of an interface rendered against the request and the records.

A template is the response body's shape with constants and `$` expressions (see `Twin.reply` in
engine/spec/model.py). It stays data, not code, so every platform's twin is described in its YAML.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.spec.model import TwinWithin
from engine.spec.paths import MISSING, get, present, values
from engine.twin.store import Record

_INTERP = re.compile(r"\{(\$[^{}]*)\}")


@dataclass(slots=True)
class Item:
    """What `$.` and `$id` refer to: a stored record, or an item of one of its lists (`$record.`)."""

    data: Any
    id: str = ""
    key: str = ""
    record: Any = None


@dataclass
class Context:
    request: Any
    results: dict[str, list[Record]] = field(default_factory=dict)
    current: Item | None = None
    token: str | None = None
    now: dt.datetime = field(default_factory=dt.datetime.now)

    def item(self, data: Any) -> Context:
        cur = self.current or Item(None)
        return Context(self.request, self.results, Item(data, cur.id, cur.key, cur.record), self.token, self.now)

    def record(self, rec: Record, data: Any = MISSING) -> Context:
        item = Item(rec.data if data is MISSING else data, rec.id, rec.key, rec.data)
        return Context(self.request, self.results, item, self.token, self.now)


def _want(request: Any, req_path: str) -> set[str] | None:
    """What a match entry asks for: a set of values, None (no constraint), or the empty set (nothing matches)."""
    if req_path.startswith("="):
        return {req_path[1:]}
    must = req_path.endswith("!")
    want = {str(v) for v in values(request, req_path.rstrip("!")) if present(v)}
    return want if want or must else None


def _one_matches(data: Any, rid: str, wants: Mapping[str, set[str] | None]) -> bool:
    for rec_path, want in wants.items():
        if want is None:
            continue
        have = [rid] if rec_path == "$id" else values(data, rec_path)
        if not want & {str(v) for v in have if present(v)}:
            return False
    return True


def matches(data: Any, rid: str, request: Any, match: Mapping[str, str] | None) -> bool:
    """Stored-record path -> request path. An absent or "" request value does not constrain, unless
    the path ends with `!` (then nothing matches); `=text` is a constant instead of a request path.
    Entries through the same list (`subitems[].class_code`, `subitems[].recognition`) must hold for
    the same item of it."""
    flat: dict[str, set[str] | None] = {}
    groups: dict[str, dict[str, set[str] | None]] = {}
    for rec_path, req_path in (match or {}).items():
        want = _want(request, req_path)
        if "[]." in rec_path:
            prefix, _, rest = rec_path.rpartition("[].")
            groups.setdefault(prefix, {})[rest] = want
        else:
            flat[rec_path] = want
    if not _one_matches(data, rid, flat):
        return False
    for prefix, wants in groups.items():
        if all(w is None for w in wants.values()):
            continue
        if not any(_one_matches(item, rid, wants) for item in values(data, prefix)):
            return False
    return True


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y%m%d%H%M%S", "%Y%m%d")


def instant(value: Any) -> dt.datetime | None:
    """A time as the specs write one (see TwinWithin), or None."""
    if not isinstance(value, str):
        return None
    for fmt in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    return None


def window(w: TwinWithin, request: Any, now: float) -> Callable[[Any], bool]:
    """Whether a stored record's time lies in the request's window (`w`: from, to, default_days)."""
    to = instant(_first(request, w.to)) if w.to else None
    start = instant(_first(request, w.from_)) if w.from_ else None
    end = to or dt.datetime.fromtimestamp(now)
    if start is None and w.default_days is not None:
        start = end - dt.timedelta(days=w.default_days)

    def inside(data: Any) -> bool:
        t = instant(_first(data, w.field))
        return t is not None and (start is None or t >= start) and t <= end

    return inside


def _first(data: Any, path: str | None) -> Any:
    got = values(data, path) if path else []
    return got[0] if got else None


def expr(text: str, ctx: Context) -> Any:
    if text.startswith("$$"):
        return text[1:]
    cur = ctx.current
    if text == "$id":
        return cur.id if cur is not None and cur.id else MISSING
    if text == "$key":
        return cur.key if cur is not None and cur.key else MISSING
    if text == "$token":
        return ctx.token if ctx.token is not None else MISSING
    if text == "$now":
        return ctx.now.strftime("%Y-%m-%d %H:%M:%S")
    if text == "$count":
        return sum(len(v) for v in ctx.results.values())
    if text == "$." or text.startswith("$."):
        return _at(cur.data if cur is not None else None, text[2:])
    if text == "$record" or text.startswith("$record."):
        return _at(cur.record if cur is not None else None, text[len("$record.") :] if "." in text else "")
    if text == "$request" or text.startswith("$request."):
        return _at(ctx.request, text[len("$request.") :] if "." in text else "")
    raise ValueError(f"unknown template expression {text!r}")


def _at(obj: Any, path: str) -> Any:
    if obj is None:
        return MISSING
    if "[]" in path:
        got = values(obj, path)
        return got if got else MISSING
    return get(obj, path)


def _interpolate(text: str, ctx: Context) -> str:
    def one(m: re.Match[str]) -> str:
        v = expr(m.group(1), ctx)
        return "" if v is MISSING else str(v)

    return _INTERP.sub(one, text)


def render(tpl: Any, ctx: Context) -> Any:
    """The rendered value, or MISSING when an expression found nothing (the caller leaves it out)."""
    if isinstance(tpl, str):
        if tpl.startswith("$"):
            return expr(tpl, ctx)
        return _interpolate(tpl, ctx) if "{$" in tpl else tpl
    if isinstance(tpl, list):
        out: list[Any] = []
        for part in tpl:
            if isinstance(part, dict) and "$each" in part:
                out.extend(_each(part, ctx))
            else:
                v = render(part, ctx)
                if v is not MISSING:
                    out.append(v)
        return out
    if isinstance(tpl, dict):
        if "$each" in tpl:
            return _each(tpl, ctx)
        return _object(tpl, ctx)
    return tpl


def _object(tpl: Mapping[str, Any], ctx: Context) -> Any:
    out: dict[str, Any] = {}
    if "$copy" in tpl:
        base = render(tpl["$copy"], ctx)
        if isinstance(base, dict):
            out.update({k: v for k, v in base.items() if not k.startswith("_")})
    for k, v in tpl.items():
        if k.startswith("$"):
            continue
        got = render(v, ctx)
        if got is MISSING:
            out.pop(k, None)
        else:
            out[k] = got
    return out


def _each(tpl: Mapping[str, Any], ctx: Context) -> list[Any]:
    src = tpl["$each"]
    where = tpl.get("$where")
    body = {k: v for k, v in tpl.items() if k not in ("$each", "$where")}
    out: list[Any] = []
    name, _, sub = src.partition(".") if isinstance(src, str) else ("", "", "")
    if name in ctx.results:
        for rec in ctx.results[name]:
            for data in values(rec.data, sub) if sub else (rec.data,):
                if matches(data, rec.id, ctx.request, where):
                    out.append(_one(body, ctx.record(rec, data)))
        return out
    items = render(src, ctx)
    for data in items if isinstance(items, list) else () if items is MISSING else (items,):
        if matches(data, ctx.current.id if ctx.current else "", ctx.request, where):
            out.append(_one(body, ctx.item(data)))
    return out


def _one(body: Mapping[str, Any], ctx: Context) -> Any:
    """One item of `$each`: an object, or with `$value` a scalar (a list of codes)."""
    return render(body["$value"], ctx) if "$value" in body else _object(body, ctx)

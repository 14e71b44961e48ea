"""Decode one spec file into its msgspec type, with findings located by file and line.

msgspec reports dict entries as `[...]` in its error paths; we re-walk the raw tree along the
type to find which key failed, so an integrator gets `platform.yaml:42`, not a JSONPath.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import Finding
from engine.spec.yamlsrc import Pos, YamlError, line_of, load

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_FIELD_IN_MSG = re.compile(r"(?:unknown field|missing required field) `([^`]+)`")


class SpecFile:
    """A loaded spec file: where it is, its raw tree and the line of every node."""

    __slots__ = ("path", "pos", "raw", "rel")

    def __init__(self, path: Path, rel: str, raw: Any, pos: Pos) -> None:
        self.path = path
        self.rel = rel
        self.raw = raw
        self.pos = pos

    def line(self, *path: Any) -> int:
        return line_of(self.pos, tuple(path))

    def finding(self, path: tuple[Any, ...], message: str, severity: str = "error") -> Finding:
        return Finding(self.rel, line_of(self.pos, path), message, severity)


def _unwrap(tp: Any, raw: Any) -> Any:
    """Strip Annotated/Optional/Union down to the member that `raw` should be decoded as."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            pick = members[0]
            for m in members:
                mo = typing.get_origin(m) or m
                if isinstance(raw, dict) and (mo is dict or (isinstance(mo, type) and issubclass(mo, msgspec.Struct))):
                    pick = m
                    break
                if isinstance(raw, list) and mo is list:
                    pick = m
                    break
            tp = pick
            continue
        return tp


def _child_type(tp: Any, raw: Any, token: str | int) -> Any:
    tp = _unwrap(tp, raw)
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        for f in msgspec.structs.fields(tp):
            if f.encode_name == token:
                return f.type
        return Any
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0]
    return Any


def locate(tp: Any, raw: Any, msgspec_path: str) -> tuple[Any, ...]:
    """Turn msgspec's `$.a[...].b[2]` into a concrete key path in `raw`."""
    out: list[Any] = []
    cur_t, cur = tp, raw
    for attr, idx in _TOKEN.findall(msgspec_path.removeprefix("$")):
        if attr:
            token: Any = attr
        elif idx == "...":
            if not isinstance(cur, dict):
                break
            vt = _child_type(cur_t, cur, "")
            token = next(iter(cur), None)
            for k, v in cur.items():
                try:
                    msgspec.convert(v, vt)
                except (msgspec.ValidationError, TypeError):
                    token = k
                    break
            if token is None:
                break
        else:
            token = int(idx)
        nxt_t = _child_type(cur_t, cur, token)
        try:
            cur = cur[token]
        except (KeyError, IndexError, TypeError):
            out.append(token)
            break
        cur_t = nxt_t
        out.append(token)
    return tuple(out)


def human(path: tuple[Any, ...]) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "(top)"


def decode_file(path: Path, rel: str, tp: type[Any]) -> tuple[Any | None, SpecFile | None, list[Finding]]:
    """Load and decode one spec file. Returns (spec or None, SpecFile, findings)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, None, [Finding(rel, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    try:
        raw, pos = load(text)
    except YamlError as exc:
        return None, None, [Finding(rel, exc.line, exc.message)]
    sf = SpecFile(path, rel, raw, pos)
    if not isinstance(raw, dict):
        return None, sf, [Finding(rel, 1, f"expected a mapping at the top of the file, found {type(raw).__name__}")]
    try:
        return msgspec.convert(raw, tp), sf, []
    except msgspec.ValidationError as exc:
        where, msg = explain(tp, raw, exc)
        if msg.startswith("unknown key"):
            msg += " (misspelt? see `specbridge schema`)"
        return None, sf, [sf.finding(where, f"{msg} at {human(where)}")]


def explain(tp: Any, raw: Any, exc: msgspec.ValidationError) -> tuple[tuple[Any, ...], str]:
    """(key path in `raw`, short message) for msgspec's error converting `raw` to `tp`.
    Also used for plugin settings, which are converted after the spec file is decoded."""
    m = _AT.match(str(exc))
    assert m is not None
    msg, mpath = m.group("msg"), m.group("path") or "$"
    where = locate(tp, raw, mpath)
    fm = _FIELD_IN_MSG.search(msg)
    if fm and msg.startswith("Object contains unknown field"):
        return (*where, fm.group(1)), f"unknown key `{fm.group(1)}`"
    if fm:
        return where, f"missing required key `{fm.group(1)}`"
    return where, msg

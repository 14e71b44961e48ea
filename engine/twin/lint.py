"""Static checks of a platform's `twin:` sections: what would otherwise surface as an empty answer.

A query of a collection nothing stores into, a reply expression that does not exist, an `empty`
or token code the platform does not document: each is a finding naming the interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.spec.loader import PlatformSpec
from engine.spec.model import Twin

_EXPRS = ("$id", "$key", "$token", "$now", "$count", "$.", "$record", "$request", "$$")
_CONTROL = ("$each", "$where", "$copy", "$value")


def _walk(tpl: Any) -> Iterator[tuple[str, Any]]:
    """(control key, its value) and ("", string) pairs of a template."""
    if isinstance(tpl, str):
        yield "", tpl
    elif isinstance(tpl, list):
        for v in tpl:
            yield from _walk(v)
    elif isinstance(tpl, dict):
        for k, v in tpl.items():
            if k == "$where":
                continue
            if k.startswith("$"):
                yield k, v
            if k != "$each":
                yield from _walk(v)


def _bad_expr(text: str) -> bool:
    if not text.startswith("$"):
        return False
    return not any(text == e or text.startswith(e + ".") or (e in ("$.", "$$") and text.startswith(e)) for e in _EXPRS)


def lint_platform(ps: PlatformSpec) -> list[str]:
    out: list[str] = []
    documented = set((ps.platform.errors or {}).keys())
    has_codes = bool(documented)
    stored = {t.collection or iid for iid, i in ps.interfaces.items() if (t := i.spec.twin) is not None and t.action == "store"}
    auth = ps.platform.auth
    for iid, iface in ps.interfaces.items():
        t: Twin | None = iface.spec.twin
        if t is None:
            continue
        where = f"{ps.id}/{iid}: twin"
        codes = documented | set((iface.spec.errors or {}).keys())
        used = [s.collection for s in (t.sources or {}).values()]
        if t.action in ("query", "delete") and not t.sources:
            used.append(t.collection or iid)
        for coll in used:
            if coll not in stored:
                out.append(f"{where}: collection `{coll}` is never stored into by this platform's interfaces")
        if t.action == "token" and (auth is None or auth.kind != "token" or auth.interface != iid):
            out.append(f"{where}: action token, but platform auth does not name this interface as its token interface")
        if t.empty is not None and has_codes and t.empty not in codes:
            out.append(f"{where}: empty code `{t.empty}` is not in the platform's errors")
        for name in t.codes.__struct_fields__ if t.codes is not None else ():
            code = getattr(t.codes, name)
            if code is not None and code not in codes:
                out.append(f"{where}: codes.{name} `{code}` is not in the platform's errors")
        sets = set(t.sources or {}) | {"records"}
        for key, value in _walk(t.reply):
            if key == "$each":
                if isinstance(value, str) and not value.startswith("$.") and value.partition(".")[0] not in sets:
                    out.append(f"{where}: $each `{value}` names no result set ({', '.join(sorted(sets))})")
            elif key and key not in _CONTROL:
                out.append(f"{where}: unknown template key `{key}`")
            elif not key and _bad_expr(value):
                out.append(f"{where}: unknown template expression `{value}`")
    return out

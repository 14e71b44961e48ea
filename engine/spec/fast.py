"""The fast path: a JSON body's Node tree compiled into msgspec Structs with constraints.

msgspec decodes and checks types, lengths, patterns, code tables (as Literals) and
cardinality in C. What it cannot express (conditions, one_of, byte lengths, calendar dates,
checks) runs as small post-checks on the decoded Struct. The fast path may only say
"valid"; on any doubt the caller runs the complete walker (validate.py) for the findings.
A body the fast path cannot model exactly (aliases, warnings, carried payloads) gets none.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from msgspec import Meta

from engine.spec.nodes import Node
from engine.spec.validate import Walker

Check = Callable[[Any], bool]
_counter = itertools.count()


class Unsupported(Exception):
    """This body can't be modelled exactly; use the complete walker only."""


def _anchored(regex: str, allow_empty: bool) -> str:
    core = regex[1:-1] if regex.startswith("^") and regex.endswith("$") else f"(?:{regex})"
    return f"^(?:{core}|)$" if allow_empty else f"^(?:{core})$"


def _day_check(node: Node) -> Check | None:
    """Regexes already bound the day to 01-31; only days 29-31 need the calendar."""
    assert node.date is not None
    fmt = node.date.spec
    if "dd" not in fmt or "yyyy" not in fmt or "MM" not in fmt or "'" in fmt:
        return None if "dd" not in fmt else (lambda v: v is None or v == "" or node.date.check(v))  # type: ignore[union-attr]
    yi, mi, di = fmt.index("yyyy"), fmt.index("MM"), fmt.index("dd")

    def check(v: Any) -> bool:
        if not v or v[di : di + 2] <= "28":
            return True
        return int(v[di : di + 2]) <= calendar.monthrange(int(v[yi : yi + 4]), int(v[mi : mi + 2]))[1]

    return check


def _walker_check(node: Node) -> Check:
    def check(v: Any) -> bool:
        if v is None or v == "":
            return True
        w = Walker()
        w.value(node, v, "")
        return not w.errors and not w.warnings

    return check


class FastCompiler:
    def compile(self, body: Node) -> tuple[Any, Check | None]:
        """Returns (type to decode into, post-check or None)."""
        if body.is_list:
            struct, check = self._struct(body)
            tp: Any = list[struct]  # type: ignore[valid-type]
            meta = self._card_meta(body)
            if meta is not None:
                tp = Annotated_(tp, meta)
            if check is None:
                return tp, None
            return tp, lambda items: all(check(i) for i in items)
        return self._struct(body)

    @staticmethod
    def _card_meta(node: Node) -> Meta | None:
        if node.min_items == 0 and node.max_items is None:
            return None
        return Meta(min_length=node.min_items or None, max_length=node.max_items)

    def _struct(self, node: Node) -> tuple[type[msgspec.Struct], Check | None]:
        if node.one_of and any(n.startswith("$") for g in node.one_of for n in g):
            raise Unsupported
        fields: list[tuple[str, Any, Any]] = []
        attr_of: dict[str, str] = {}
        child_checks: list[tuple[str, Check]] = []
        inlines: list[tuple[str, str, bool, bool]] = []
        for i, (name, child) in enumerate((node.children or {}).items()):
            if child.aliases or child.carried_as or child.warn or (child.codes is not None and not child.codes_strict):
                raise Unsupported
            for cond in (child.required_if, child.forbidden_if):
                if cond is not None and cond.field.startswith("$"):
                    raise Unsupported
            attr = f"f{i}"
            attr_of[name] = attr
            tp, check, inline = self._field(child)
            if inline is not None:
                inlines.append((attr, inline, not child.required or child.allow_empty, child.kind in ("number", "decimal")))
            if child.required:
                fields.append((attr, tp, msgspec.field(name=name)))
            elif child.nullable:
                fields.append((attr, tp | None, msgspec.field(name=name, default=None)))
            else:
                fields.append((attr, tp, msgspec.field(name=name, default=None)))
            if check is not None:
                child_checks.append((attr, check))
        if node.extra == "warn":
            raise Unsupported
        struct = msgspec.defstruct(
            f"Fast{next(_counter)}",
            fields,
            kw_only=True,
            omit_defaults=True,
            forbid_unknown_fields=node.extra == "forbid",
        )
        obj_checks = self._object_checks(node, attr_of)
        if inlines:
            obj_checks.insert(0, _inline_check(inlines))
        if not child_checks and not obj_checks:
            return struct, None
        if not child_checks and len(obj_checks) == 1:
            return struct, obj_checks[0]

        def check(obj: Any) -> bool:
            for attr, fn in child_checks:
                v = getattr(obj, attr)
                if v is not None and not fn(v):
                    return False
            return all(fn(obj) for fn in obj_checks)

        return struct, check

    def _object_checks(self, node: Node, attr_of: dict[str, str]) -> list[Check]:
        out: list[Check] = []

        def present(obj: Any, name: str) -> bool:
            v = getattr(obj, attr_of[name])
            return v is not None and v != ""

        for name, child in (node.children or {}).items():
            for cond, must in ((child.required_if, True), (child.forbidden_if, False)):
                if cond is None:
                    continue
                walker = Walker()
                attr, target = attr_of[name], cond.field

                def fn(
                    obj: Any,
                    attr: str = attr,
                    cond: Any = cond,
                    must: bool = must,
                    target: str = target,
                    walker: Walker = walker,
                    allow_empty: bool = child.allow_empty,
                ) -> bool:
                    sib = {target: getattr(obj, attr_of[target])} if target in attr_of else {}
                    sib = {k: v for k, v in sib.items() if v is not None}
                    if not walker._cond(cond, sib):
                        return True
                    v = getattr(obj, attr)
                    has = v is not None and (v != "" or (must and allow_empty))
                    return has if must else not (v is not None and v != "")

                out.append(fn)
        if node.one_of:
            groups = [list(g) for g in node.one_of]
            out.append(lambda obj: any(all(present(obj, n) for n in g) for g in groups))
        return out

    def _field(self, node: Node) -> tuple[Any, Check | None, str | None]:
        """(type, post-check, inline regex). An inline regex is matched against str() of the
        value together with its siblings' in one C call: far cheaper than a call per field."""
        kind = node.kind
        if node.children is not None and kind in ("object", "list"):
            struct, check = self._struct(node)
            if kind == "object":
                return struct, check, None
            meta = self._card_meta(node)
            tp: Any = list[struct]  # type: ignore[valid-type]
            if meta is not None:
                tp = Annotated_(tp, meta)
            return tp, (None if check is None else (lambda items: all(check(i) for i in items))), None
        if kind == "list":
            assert node.item is not None
            itp, icheck, iinline = self._scalar(node.item)
            if iinline is not None:
                rx = re.compile(iinline)
                icheck = lambda v, m=rx.fullmatch: m(repr(v) if isinstance(v, float) else str(v)) is not None  # noqa: E731
            meta = self._card_meta(node)
            tp = list[itp]  # type: ignore[valid-type]
            if meta is not None:
                tp = Annotated_(tp, meta)
            return tp, (None if icheck is None else (lambda items: all(icheck(i) for i in items))), None
        if kind == "object":  # an object with no fields
            return dict, None, None
        return self._scalar(node)

    def _scalar(self, node: Node) -> tuple[Any, Check | None]:
        kind = node.kind
        optional_empty = not node.required or node.allow_empty
        needs_walker = bool(node.checks) or (node.unit == "bytes" and node.max_len is not None)
        if kind == "string":
            if node.encrypted:
                return str, None, None
            if node.codes is not None and node.pattern is None and not needs_walker and node.min_len is None:
                values = [c for c in node.codes if node.max_len is None or len(c) <= node.max_len]
                if optional_empty:
                    values.append("")
                if not values:
                    raise Unsupported
                return Literal[tuple(values)], None, None  # type: ignore[misc]
            if node.codes is not None:
                return str, _walker_check(node), None
            kw: dict[str, Any] = {}
            if node.unit == "chars" and node.max_len is not None:
                kw["max_length"] = node.max_len
            if node.pattern is not None:
                kw["pattern"] = _anchored(node.pattern.pattern, optional_empty)
            min_len = node.min_len or 0
            if node.unit == "chars" and not optional_empty:
                kw["min_length"] = max(1, min_len)
            elif min_len:
                needs_walker = True
            tp = Annotated_(str, Meta(**kw)) if kw else str
            return tp, (_walker_check(node) if needs_walker else None), None
        if node.codes is not None and kind != "string":
            base = {"int": int, "number": float, "decimal": float, "bool": bool}.get(kind, str)
            return base, _walker_check(node), None
        if kind in ("date", "datetime", "time"):
            if node.date is None:
                raise Unsupported
            return str, None, node.date.exact
        if kind == "int":
            kw = {k: v for k, v in (("ge", node.vmin), ("le", node.vmax)) if v is not None}
            if any(v != int(v) for v in kw.values()):
                return int, _walker_check(node), None
            kw = {k: int(v) for k, v in kw.items()}
            return (Annotated_(int, Meta(**kw)) if kw else int), (_walker_check(node) if node.max_len else None), None
        if kind in ("number", "decimal"):
            if node.vmin is not None or node.vmax is not None or node.max_len:
                return float, _walker_check(node), None
            if kind == "decimal" and node.precision is not None:
                return float, None, _decimal_regex(node.precision, node.scale or 0)
            return float, None, None
        if kind == "bool":
            return bool, None, None
        if kind == "binary":
            return str, _walker_check(node), None
        if kind == "any":
            return Any, None, None
        raise Unsupported  # file parts and unknown kinds are never JSON


def _decimal_regex(precision: int, scale: int) -> str:
    """Exact for repr(float): shortest digits, so only '.0' can carry a trailing zero.
    Exponent forms (1e-05) don't match and fall to the complete walker, which decides."""
    k = precision - scale
    intpart = "0" if k <= 0 else f"(?:0|[1-9]\\d{{0,{k - 1}}})"
    frac = r"(?:\.0)?" if scale == 0 else f"(?:\\.\\d{{1,{scale}}})?"
    return f"-?{intpart}{frac}"


def _inline_check(inlines: list[tuple[str, str, bool, bool]]) -> Check:
    """One fullmatch over all inline-checked fields of a struct, joined by NUL.

    No segment regex can match NUL, so a value cannot smuggle a separator. Strings render
    absent as '' (`or ""`), so the text "None" is still checked; floats render via repr, where
    absent is 'None'. The function is generated so the hot path has no Python loop: one
    f-string and one regex call.
    """
    segs = [(f"(?:{rx}|None)" if use_repr else f"(?:{rx}|)") if optional else rx for _, rx, optional, use_repr in inlines]
    matcher = re.compile("\x00".join(segs)).fullmatch
    parts = "\\x00".join(f"{{o.{attr}!r}}" if use_repr else f'{{o.{attr} or ""}}' for attr, _, _, use_repr in inlines)
    src = f"def check(o, _m=_m):\n    return _m(f'{parts}') is not None\n"
    ns: dict[str, Any] = {"_m": matcher}
    exec(compile(src, "<fast-inline>", "exec"), ns)  # generated once per struct at load
    return ns["check"]


def Annotated_(tp: Any, meta: Meta) -> Any:  # noqa: N802 - mirrors typing.Annotated
    from typing import Annotated

    return Annotated[tp, meta]

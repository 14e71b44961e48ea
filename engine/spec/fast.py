"""The fast path: a JSON body's Node tree compiled into msgspec Structs with constraints.

msgspec decodes and checks types, lengths, patterns, code tables (as Literals) and
cardinality in C. What it cannot express (conditions, one_of, byte lengths, calendar dates,
decimal scale, checks) runs as one generated post-check per Struct: straight-line code, no
Python loop over fields. The fast path may only say "valid"; on any doubt the caller runs the
complete walker (validate.py) for the findings. A body the fast path cannot model exactly
(aliases, warnings, carried payloads) gets none.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from engine.spec.nodes import Node
from engine.spec.validate import Walker

Check = Callable[[Any], bool]
_counter = itertools.count()

# Date formats whose exact shape is one msgspec parses natively (RFC 3339 subsets). msgspec's
# parser is calendar-exact in C (Feb 29 only in leap years) but also accepts 'T'/'t', fractions
# and offsets, so the shape is pinned separately: every digit mapped to '0' must give the template.
_NATIVE: dict[str, type] = {
    "yyyy-MM-dd": date,
    "yyyy-MM-dd HH:mm:ss": datetime,
    "yyyy-MM-dd'T'HH:mm:ss": datetime,
    "yyyy-MM-dd HH:mm:ss.SSS": datetime,
    "yyyy-MM-dd'T'HH:mm:ss.SSS": datetime,
    "HH:mm:ss": time,
    "HH:mm:ss.SSS": time,
}
_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else b for b in range(256))
"""bytes.translate table: ASCII digits -> '0', every other byte unchanged."""


class Unsupported(Exception):
    """This body can't be modelled exactly; use the complete walker only."""


_PLAIN = frozenset({str, int, bool, type(None)})


def plain_json(value: Any) -> bool:
    """Whether decoded data holds only what a JSON decode gives (dict, list, str, int, finite float,
    bool, None). Only such data may take the fast path through `msgspec.convert`, which is laxer than
    the walker with other Python objects (a tuple for a list, a Decimal or a NaN for a number)."""
    t = type(value)
    if t is not dict and t is not list:
        return t in _PLAIN or (t is float and value - value == 0.0)
    stack = [value]
    while stack:
        v = stack.pop()
        for x in v.values() if type(v) is dict else v:  # scalars inline: no call per value
            tx = type(x)
            if tx in _PLAIN:
                continue
            if tx is float:
                if x - x != 0.0:  # NaN and infinities
                    return False
            elif tx is dict or tx is list:
                stack.append(x)
            else:
                return False
    return True


@dataclass(frozen=True, slots=True)
class Inline:
    """A field checked inside its Struct's generated post-check instead of by a call of its own."""

    regex: str | None = None
    """Matched against str() (repr() for numbers) of the value, together with its siblings."""
    use_repr: bool = False
    native: type | None = None
    """date/datetime/time: the value is decoded by msgspec, its shape pinned by `template`."""
    template: str = ""
    placeholder: str = ""
    """A valid value standing in for an absent optional one, so the shape stays fixed."""
    byte_limit: tuple[str, int, bool] | None = None
    """(encoding, max bytes, ASCII-compatible): length in bytes of a named encoding."""
    decimal: tuple[int, int] | None = None
    """(precision, scale) checked arithmetically; see _decimal_test."""


def _fullmatch_pattern(regex: str, allow_empty: bool) -> str:
    """A pattern for msgspec (which calls re.search) that means fullmatch: `\\Z`, since `$`
    also matches before a trailing newline that the walker's fullmatch rejects."""
    core = f"(?:{regex})|" if allow_empty else regex
    out = f"^(?:{core})\\Z"
    try:
        re.compile(out)
    except re.error:  # e.g. global inline flags, which must open the whole pattern
        raise Unsupported from None
    return out


def _walker_check(node: Node, empty_ok: bool, plaintext: bool = False) -> Check:
    """The complete walker on one value. `empty_ok`: "" counts as absent (optional) rather than
    as a missing required value; the walker never runs value checks on an absent field."""

    def check(v: Any) -> bool:
        if v is None:
            return True
        if v == "":
            return empty_ok
        w = Walker(plaintext=plaintext)
        w.value(node, v, "")
        return not w.errors and not w.warnings

    return check


def _ascii_compatible(encoding: str) -> bool:
    ascii_chars = bytes(range(128))
    try:
        return ascii_chars.decode("ascii").encode(encoding) == ascii_chars
    except (LookupError, UnicodeError):
        return False


def _native_date(node: Node) -> Inline | None:
    assert node.date is not None
    native = _NATIVE.get(node.date.spec)
    if native is None:
        return None
    shape = node.date.spec.replace("'", "")
    template = re.sub("[yMdHmsS]", "0", shape)
    placeholder = shape
    for tok, val in (("yyyy", "2000"), ("MM", "01"), ("dd", "01"), ("HH", "00"), ("mm", "00"), ("ss", "00"), ("SSS", "000")):
        placeholder = placeholder.replace(tok, val)
    return Inline(native=native, template=template, placeholder=placeholder)


class FastCompiler:
    def __init__(self, *, plaintext: bool = False) -> None:
        self.plaintext = plaintext
        """Model encrypted fields by their plaintext rules (the walker's `plaintext`), not as ciphertext."""

    def compile(self, body: Node) -> tuple[Any, Check | None]:
        """Returns (type to decode into, post-check or None)."""
        if body.is_list:
            struct, check = self._struct(body)
            tp: Any = list[struct]  # type: ignore[valid-type]
            meta = self._card_meta(body)
            if meta is not None:
                tp = Annotated[tp, meta]
            return tp, (None if check is None else _each(check))
        return self._struct(body)

    @staticmethod
    def _card_meta(node: Node) -> Meta | None:
        if node.min_items == 0 and node.max_items is None:
            return None
        return Meta(min_length=node.min_items or None, max_length=node.max_items)

    def _struct(self, node: Node) -> tuple[type[msgspec.Struct], Check | None]:
        if node.one_of and any(n.startswith("$") for g in node.one_of for n in g):
            raise Unsupported
        if node.extra == "warn":
            raise Unsupported
        fields: list[tuple[str, Any, Any]] = []
        attr_of: dict[str, str] = {}
        child_checks: list[tuple[str, Check]] = []
        inlines: list[tuple[str, Inline, bool]] = []
        for i, (name, child) in enumerate((node.children or {}).items()):
            if child.aliases or child.carried_as or child.warn or (child.codes is not None and not child.codes_strict):
                raise Unsupported
            attr = f"f{i}"
            attr_of[name] = attr
            tp, check, inline = self._field(child)
            if inline is not None:
                inlines.append((attr, inline, not child.required or child.allow_empty))
            if child.required:
                fields.append((attr, tp, msgspec.field(name=name)))
            elif child.nullable:
                fields.append((attr, tp | None, msgspec.field(name=name, default=None)))
            else:
                fields.append((attr, tp, msgspec.field(name=name, default=None)))
            if check is not None:
                child_checks.append((attr, check))
        struct = msgspec.defstruct(
            f"Fast{next(_counter)}",
            fields,
            kw_only=True,
            omit_defaults=True,
            forbid_unknown_fields=node.extra == "forbid",
            gc=False,  # decoded JSON can't form reference cycles; untracked instances allocate and free faster
        )
        obj_checks = self._object_checks(node, attr_of)
        if not child_checks and not obj_checks and not inlines:
            return struct, None
        return struct, _generate(child_checks, inlines, obj_checks)

    def _object_checks(self, node: Node, attr_of: dict[str, str]) -> list[Check]:
        out: list[Check] = []
        children = node.children or {}

        def present(obj: Any, name: str) -> bool:
            v = getattr(obj, attr_of[name])
            return v is not None and v != ""

        for name, child in children.items():
            for cond, must in ((child.required_if, True), (child.forbidden_if, False)):
                if cond is None:
                    continue
                if cond.field.startswith("$"):
                    raise Unsupported
                tnode = children.get(cond.field)
                by_value = cond.present is None and cond.absent is None
                if by_value and tnode is not None and (tnode.children is not None or tnode.kind in ("object", "list", "any")):
                    raise Unsupported  # compared as text: a Struct doesn't print like the walker's dict
                walker = Walker()
                attr = attr_of[name]

                def fn(
                    obj: Any,
                    attr: str = attr,
                    cond: Any = cond,
                    must: bool = must,
                    target: str = cond.field,
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

    def _field(self, node: Node) -> tuple[Any, Check | None, Inline | None]:
        """(type, post-check, inline). An inline field is checked together with its siblings
        in the Struct's generated post-check: far cheaper than a call per field."""
        kind = node.kind
        if node.children is not None and kind in ("object", "list"):
            struct, check = self._struct(node)
            if kind == "object":
                return struct, check, None
            meta = self._card_meta(node)
            tp: Any = list[struct]  # type: ignore[valid-type]
            if meta is not None:
                tp = Annotated[tp, meta]
            return tp, (None if check is None else _each(check)), None
        if kind == "list":
            assert node.item is not None
            itp, icheck, iinline = self._scalar(node.item, as_item=True)
            if iinline is not None:
                icheck = _item_check(node.item, iinline)
            meta = self._card_meta(node)
            tp = list[itp]  # type: ignore[valid-type]
            if meta is not None:
                tp = Annotated[tp, meta]
            return tp, (None if icheck is None else _each(icheck)), None
        if kind == "object":  # an object with no fields: the walker still applies `extra`
            return (dict, None, None) if node.extra == "ignore" else (*self._struct(node), None)
        return self._scalar(node)

    def _scalar(self, node: Node, as_item: bool = False) -> tuple[Any, Check | None, Inline | None]:
        # A field's "" is absent (fine unless required); a list item's "" is a value like any other,
        # so items are treated as required (stricter, never looser than the walker).
        optional_empty = not as_item and (not node.required or node.allow_empty)
        kind = node.kind
        non_empty: dict[str, Any] = {} if optional_empty else {"min_length": 1}
        encrypted = node.encrypted and not self.plaintext
        if node.custom is not None and not encrypted:  # a plugin type: its base type in C, its rules by the walker
            base_t: Any = {"string": str, "int": int, "number": int | float, "bool": bool}[kind]
            if kind == "string" and non_empty:
                base_t = Annotated[str, Meta(**non_empty)]
            return base_t, _walker_check(node, optional_empty, self.plaintext), None
        if kind == "string":
            if encrypted:  # the wire value is ciphertext: only its presence and type are checked
                return (Annotated[str, Meta(**non_empty)] if non_empty else str), None, None
            byte_max = node.unit == "bytes" and node.max_len is not None
            if node.codes is not None and node.pattern is None and not node.checks and not byte_max and node.min_len is None:
                values = [c for c in node.codes if (node.max_len is None or len(c) <= node.max_len) and (c or optional_empty)]
                if optional_empty and "" not in values:
                    values.append("")
                if not values:
                    raise Unsupported
                return Literal[tuple(values)], None, None  # type: ignore[misc]
            base = Annotated[str, Meta(**non_empty)] if non_empty else str
            if node.codes is not None or node.checks:
                return base, _walker_check(node, optional_empty, self.plaintext), None
            kw = dict(non_empty)
            min_len = node.min_len or 0
            inline = None
            if node.unit == "chars":
                if node.max_len is not None:
                    kw["max_length"] = node.max_len
                if min_len and not optional_empty:
                    kw["min_length"] = max(1, min_len)
            elif byte_max:
                assert node.max_len is not None
                compat = _ascii_compatible(node.encoding)
                if compat:  # a character is at least one byte: the char count pre-filters in C
                    kw["max_length"] = node.max_len
                inline = Inline(byte_limit=(node.encoding, node.max_len, compat))
            if node.pattern is not None:
                kw["pattern"] = _fullmatch_pattern(node.pattern.pattern, optional_empty)
            tp = Annotated[str, Meta(**kw)] if kw else str
            if min_len and (optional_empty or node.unit == "bytes"):
                return tp, _walker_check(node, optional_empty, self.plaintext), None
            return tp, None, inline
        if node.codes is not None:
            base_t = {"int": int, "number": int | float, "decimal": int | float, "bool": bool}.get(kind, str)
            return base_t, _walker_check(node, optional_empty, self.plaintext), None
        if kind in ("date", "datetime", "time"):
            if node.date is None:
                raise Unsupported
            native = _native_date(node)
            if native is not None:
                return str, None, native
            return str, None, Inline(regex=node.date.exact)
        if kind == "int":
            kw = {k: v for k, v in (("ge", node.vmin), ("le", node.vmax)) if v is not None}
            if any(v != int(v) for v in kw.values()):
                return int, _walker_check(node, optional_empty, self.plaintext), None
            kw = {k: int(v) for k, v in kw.items()}
            check = _walker_check(node, optional_empty, self.plaintext) if node.max_len else None
            return (Annotated[int, Meta(**kw)] if kw else int), check, None
        if kind in ("number", "decimal"):
            # int | float: the same Python value the walker gets from msgspec.json.decode
            tp = int | float
            if node.vmin is not None or node.vmax is not None or node.max_len:
                return tp, _walker_check(node, optional_empty, self.plaintext), None
            if kind == "decimal" and node.precision is not None:
                if node.precision <= _EXACT_DIGITS:
                    return tp, None, Inline(decimal=(node.precision, node.scale or 0))
                return tp, None, Inline(regex=_decimal_regex(node.precision, node.scale or 0), use_repr=True)
            return tp, None, None
        if kind == "bool":
            return bool, None, None
        if kind == "binary":
            return (Annotated[str, Meta(**non_empty)] if non_empty else str), _walker_check(node, optional_empty, self.plaintext), None
        if kind == "any":
            return Any, None, None
        raise Unsupported  # file parts and unknown kinds are never JSON


_EXACT_DIGITS = 15
"""Up to 15 significant digits a float's ulp stays below the decimal's last place."""


def _decimal_test(var: str, precision: int, scale: int) -> str:
    """A Python expression: does the number `var` fit decimal(precision, scale) as the walker
    counts it (the digits of repr(), trailing fraction zeros dropped, a zero being one integer digit)?

    Exact without formatting the float, for precision <= 15: m = round(v * 10**s) is the only
    candidate for v's digits (the product is off by far less than 0.5), and `m / 10**s`, a
    correctly rounded division, gives back v exactly when v is the double nearest m/10**s, that
    is when repr(v) has at most s fraction digits. |v| < 10**(p-s) bounds the integer digits.
    """
    k = precision - scale
    limit, unit = float(10**k), float(10**scale)
    test = f"-{limit!r} < {var} < {limit!r} and {var} == round({var} * {unit!r}) / {unit!r}"
    return f"{var} != 0 and {test}" if k <= 0 else test


def _decimal_regex(precision: int, scale: int) -> str:
    """Exact for repr(): an int's digits, or a float's shortest digits where only '.0' can carry a
    trailing zero. Exponent forms (1e-05) don't match and fall to the complete walker, which
    decides. With no integer digits allowed (precision == scale) the walker counts a zero as one
    integer digit, so only a non-zero fraction passes."""
    k = precision - scale
    if k <= 0:
        return f"-?0\\.\\d{{0,{scale - 1}}}[1-9]" if scale > 0 else "(?!)"
    intpart = f"(?:0|[1-9]\\d{{0,{k - 1}}})"
    frac = r"(?:\.0)?" if scale == 0 else f"(?:\\.\\d{{1,{scale}}})?"
    return f"-?{intpart}{frac}"


def _each(check: Check) -> Check:
    def each(items: list[Any]) -> bool:
        return all(map(check, items))

    return each


def _item_check(node: Node, inline: Inline) -> Check:
    """A list item's inline rule as a check of its own (items are never absent)."""
    if inline.byte_limit is not None:
        enc, limit, compat = inline.byte_limit
        return lambda v: (compat and v.isascii()) or len(v.encode(enc, "replace")) <= limit
    if inline.decimal is not None:
        ns: dict[str, Any] = {}
        exec(f"def check(v):\n    return {_decimal_test('v', *inline.decimal)}\n", ns)  # generated once at load
        return ns["check"]
    regex = node.date.exact if inline.native is not None and node.date is not None else inline.regex
    assert regex is not None
    m = re.compile(regex).fullmatch
    return lambda v: m(repr(v) if isinstance(v, float) else str(v)) is not None


def _generate(child_checks: list[tuple[str, Check]], inlines: list[tuple[str, Inline, bool]], obj_checks: list[Check]) -> Check:
    """One straight-line post-check for a Struct, compiled once at load.

    Native dates: the values are joined into one JSON array with an f-string; digits mapped to
    '0' must give the fixed template (so each value has exactly its format's shape, ASCII
    digits, no quote or escape), then one msgspec decode checks month, day against the calendar
    (leap years included), hours, minutes and seconds in C. An absent optional date renders as a
    valid placeholder, a missing required one as "" (which breaks the template).

    Regex fields: one fullmatch over all of them joined by NUL. No segment regex can match
    NUL, so a value cannot smuggle a separator. Strings render absent as '' (`or ""`), numbers
    via repr, where absent is 'None'.

    Byte lengths: an ASCII value in an ASCII-compatible encoding has as many bytes as characters,
    which msgspec already bounded; only other values are encoded.
    """
    ns: dict[str, Any] = {"_Invalid": msgspec.ValidationError, "_zeros": _ZEROS}
    lines = ["def check(o):"]
    natives = [(a, i, opt) for a, i, opt in inlines if i.native is not None]
    if natives:
        items = []
        for n, (attr, inl, optional) in enumerate(natives):
            if optional:
                ns[f"_p{n}"] = inl.placeholder
                items.append(f'"{{o.{attr} or _p{n}}}"')
            else:
                items.append(f'"{{o.{attr}}}"')
        template = "[" + ",".join(f'"{inl.template}"' for _, inl, _ in natives) + "]"
        ns["_shape"] = template.encode("ascii")
        ns["_dates"] = msgspec.json.Decoder(tuple[tuple(inl.native for _, inl, _ in natives)]).decode  # type: ignore[misc]
        lines += [
            f"    x = f'[{','.join(items)}]'.encode('ascii', 'replace')",
            "    if x.translate(_zeros) != _shape:",
            "        return False",
            "    try:",
            "        _dates(x)",
            "    except _Invalid:",
            "        return False",
        ]
    for n, (attr, inl, _) in enumerate(i for i in inlines if i[1].byte_limit is not None):
        assert inl.byte_limit is not None
        enc, limit, compat = inl.byte_limit
        ns[f"_enc{n}"] = enc
        ascii_ok = "v.isascii() or " if compat else ""
        lines += [
            f"    v = o.{attr}",
            f"    if v is not None and not ({ascii_ok}len(v.encode(_enc{n}, 'replace')) <= {limit}):",
            "        return False",
        ]
    for attr, inl, _ in inlines:
        if inl.decimal is not None:
            lines += [f"    v = o.{attr}", f"    if v is not None and not ({_decimal_test('v', *inl.decimal)}):", "        return False"]
    for n, (attr, fn) in enumerate(child_checks):
        ns[f"_c{n}"] = fn
        lines += [f"    v = o.{attr}", f"    if v is not None and not _c{n}(v):", "        return False"]
    regexed = [(a, i, opt) for a, i, opt in inlines if i.regex is not None]
    if regexed:
        segs = []
        for _, inl, optional in regexed:
            assert inl.regex is not None
            segs.append((f"(?:{inl.regex}|None)" if inl.use_repr else f"(?:{inl.regex}|)") if optional else inl.regex)
        ns["_m"] = re.compile("\x00".join(segs)).fullmatch
        parts = "\\x00".join(f"{{o.{attr}!r}}" if inl.use_repr else f'{{o.{attr} or ""}}' for attr, inl, _ in regexed)
        lines += [f"    if _m(f'{parts}') is None:", "        return False"]
    for n, fn in enumerate(obj_checks):
        ns[f"_o{n}"] = fn
        lines += [f"    if not _o{n}(o):", "        return False"]
    lines.append("    return True")
    exec(compile("\n".join(lines) + "\n", "<fast-check>", "exec"), ns)  # generated once per Struct at load
    return ns["check"]

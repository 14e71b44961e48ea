"""Sandboxed jinja2 expressions for what a plain field map cannot say.

One `ImmutableSandboxedEnvironment` per mapping set: templates cannot mutate the record, reach
dunder attributes or call unsafe methods. A rule that is a single `{{ ... }}` keeps its native
type (a list, an int, None) and, in the common subset of the language, runs as plain Python
closures with the template's exact semantics (engine/translate/pyexpr.py: 5-10x cheaper);
anything else renders to a string. All compile once at load. Access the sandbox refuses raises
instead of rendering "", so a blocked expression is an error, never a silently empty field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.spec.checks import id_card_check_digit
from engine.translate.formats import ConvertError, date_converter, format_now
from engine.translate.pyexpr import compile_expression

_SINGLE = re.compile(r"^\s*\{\{(?P<body>.*)\}\}\s*$", re.S)


class ExprError(ValueError):
    """An expression failed at run time (or was refused by the sandbox)."""


class _Undefined(Undefined):
    """Missing keys read as empty/None; refused (unsafe) access raises."""

    __slots__ = ()

    def _refused(self) -> bool:
        return self._undefined_exception is SecurityError

    def __str__(self) -> str:
        if self._refused():
            self._fail_with_undefined_error()
        return ""

    def __bool__(self) -> bool:
        if self._refused():
            self._fail_with_undefined_error()
        return False

    def __iter__(self):  # type: ignore[no-untyped-def]
        if self._refused():
            self._fail_with_undefined_error()
        return iter(())


# -- helpers given to every expression ---------------------------------------------------
def _check_chars() -> list[str]:
    """The check character for each value of 2 * int(first17, 13) % 11, taken from id_card_check_digit.

    The MOD 11-2 weights are 2**(17-i) mod 11 and 13 = 2 (mod 11), so the weighted sum is
    2 * int(first17, 13) modulo 11: one C call instead of a Python loop over 17 digits."""
    found: dict[int, str] = {}
    for n in range(200):
        digits = f"{n:017d}"
        found.setdefault(2 * int(digits, 13) % 11, id_card_check_digit(digits))
    assert len(found) == 11
    return [found[r] for r in range(11)]


_CHECK_CHARS = _check_chars()


def id_card_birthday(id_no: Any) -> str | None:
    """yyyy-MM-dd from an 18-digit resident ID number (None when it is not a valid one)."""
    s = str(id_no or "").strip().upper()
    first17 = s[:17]
    if len(s) != 18 or not first17.isdigit():
        return None
    if first17.isascii():  # other Unicode digits take the general way (int() of some of them raises there)
        if _CHECK_CHARS[2 * int(first17, 13) % 11] != s[17]:
            return None
    elif id_card_check_digit(first17) != s[17]:
        return None
    try:
        return dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14])).isoformat()
    except ValueError:
        return None


def id_card_sex(id_no: Any) -> str | None:
    """GB/T 2261.1 sex code (1 male, 2 female) from an 18-digit ID number's 17th digit."""
    s = str(id_no or "").strip()
    return ("1" if int(s[16]) % 2 else "2") if len(s) == 18 and s[16].isdigit() else None


def _as_date(v: Any) -> dt.date | None:
    if type(v) is str:  # the usual case: what str(v or "") gives a str
        s = v.strip()
    elif isinstance(v, dt.datetime):
        return v.date()
    elif isinstance(v, dt.date):
        return v
    else:
        s = str(v or "").strip()
    # zero-padded ASCII digits in the slice strptime reads: what it gives, cheaply (else, or a bad day, its way)
    digits = (s[:4] + s[5:7] + s[8:10] if s[4:5] == "-" and s[7:8] == "-" else "") if "-" in s else s[:8]
    if len(digits) == 8 and digits.isascii() and digits.isdigit():
        try:
            return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError:
            pass
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(s[: 10 if "-" in s else 8], fmt).date()
        except ValueError:
            continue
    return None


def age(birth: Any, at: Any = None, unit: str = "a") -> int | None:
    """Completed age from a birth date (yyyy-MM-dd, yyyyMMdd or a date) at `at` (default today):
    in years (a), months (mo) or days (d). None when the birth date is unreadable."""
    b = _as_date(birth)
    ref = _as_date(at) if at not in (None, "") else dt.date.today()
    if b is None or ref is None:
        return None
    if unit == "d":
        return (ref - b).days
    months = (ref.year - b.year) * 12 + ref.month - b.month - (1 if ref.day < b.day else 0)
    return months if unit == "mo" else months // 12


def now(fmt: str = "yyyy-MM-dd HH:mm:ss") -> str:
    """The current local time (Beijing time on the hub, as every platform expects) in a Java-style format."""
    return _now_fmt(fmt)(dt.datetime.now())


_NOW_CACHE: dict[str, Callable[[dt.datetime], str]] = {}


def _now_fmt(fmt: str) -> Callable[[dt.datetime], str]:
    f = _NOW_CACHE.get(fmt)
    if f is None:
        f = _NOW_CACHE[fmt] = format_now(fmt)
    return f


_DATE_CACHE: dict[tuple[str, str], Callable[[Any], str]] = {}


def reformat(value: Any, fmt_in: str, fmt_out: str) -> str | None:
    """Re-format a date string (`{{ reformat(x, 'yyyyMMdd', 'yyyy-MM-dd') }}`); None for no value."""
    if value in (None, ""):
        return None
    conv = _DATE_CACHE.get((fmt_in, fmt_out))
    if conv is None:
        conv = _DATE_CACHE[(fmt_in, fmt_out)] = date_converter(fmt_in, fmt_out)
    try:
        return conv(value)
    except ConvertError as exc:
        raise ExprError(str(exc)) from None


def clip(value: Any, n: int) -> Any:
    """At most n characters (platforms with short text columns); None stays None."""
    return value if value is None else str(value)[:n]


def head(value: Any) -> Any:
    """The first item of a list, or the object itself (a record that is one row or a list of rows)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def first(*values: Any) -> Any:
    """The first argument that is neither None, "" nor undefined."""
    for v in values:
        if v is not None and v != "" and not isinstance(v, Undefined):
            return v
    return None


_NO_STOP = frozenset({id_card_birthday, id_card_sex, age, now, reformat, clip, first, head})
_PURE = frozenset({id_card_birthday, id_card_sex, reformat, clip, first, head})
"""Their value depends on their arguments only (not `now`, nor `age`, which may read today's date)."""

_ERRORS = (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError, LookupError)


def _value(rv: Any) -> Any:
    """An expression's result: undefined is None, unless the sandbox refused the access."""
    if isinstance(rv, Undefined):
        if rv._undefined_exception is SecurityError:
            rv._fail_with_undefined_error()
        return None
    return rv


class Expressions:
    """The sandbox of one mapping set, with its helpers; `code_label` reads the loaded code tables."""

    def __init__(self, code_label: Callable[[str, Any], str | None]) -> None:
        env = ImmutableSandboxedEnvironment(undefined=_Undefined, autoescape=False, keep_trailing_newline=False)
        env.policies["truncate.leeway"] = 0
        helpers: dict[str, Any] = {
            "id_card_birthday": id_card_birthday,
            "id_card_sex": id_card_sex,
            "age": age,
            "now": now,
            "reformat": reformat,
            "clip": clip,
            "first": first,
            "head": head,
            "code_label": code_label,
        }
        env.globals.update(helpers)
        env.filters.update({"clip": clip, "reformat": reformat, "id_card_birthday": id_card_birthday})
        self.env = env
        self.direct = frozenset(id(f) for f in (*helpers.values(), *env.filters.values()) if f in _NO_STOP)
        """Helpers known never to raise StopIteration: generated code calls them without the guard."""
        self.pure = frozenset(id(f) for f in helpers.values() if f in _PURE)
        self._nodes: dict[Callable[[Mapping[str, Any]], Any], Any] = {}

    def compile(self, source: str, *, fast: bool = True) -> Callable[[Mapping[str, Any]], Any]:
        """Compile once; the result evaluates against {record, item, index, request}. Raises TemplateSyntaxError.

        A single `{{ ... }}` in the subset `pyexpr` knows becomes plain Python closures with the
        template's semantics (fast=False keeps the template: the tests compare the two). Otherwise
        evaluation builds the template context directly (shared, from one precomputed dict of the
        environment's globals) rather than through `Template.render`, which re-merges the globals on
        every call: that merge was most of the cost of an expression."""
        base = dict(self.env.globals)
        m = _SINGLE.match(source)
        if m is not None and "{{" not in m.group("body") and "{%" not in source:
            set_source = "{%- set result = (" + m.group("body").strip() + ") -%}"
            tmpl = self.env.from_string(set_source)

            def native(ctx: Mapping[str, Any]) -> Any:
                try:
                    context = tmpl.new_context({**base, **ctx}, shared=True)
                    for _ in tmpl.root_render_func(context):
                        pass
                    return _value(context.vars.get("result"))
                except _ERRORS as exc:
                    raise ExprError(f"{type(exc).__name__}: {exc}") from None

            quick = compile_expression(self.env, set_source, base, lambda ctx: tmpl.new_context({**base, **ctx}, shared=True))
            if quick is None or not fast:
                return native

            def closure(ctx: Mapping[str, Any]) -> Any:
                try:
                    return _value(quick(ctx))
                except _ERRORS as exc:
                    raise ExprError(f"{type(exc).__name__}: {exc}") from None

            self._nodes[closure] = self.env.parse(set_source).body[0].node  # type: ignore[attr-defined]
            return closure
        tmpl = self.env.from_string(source)

        def render(ctx: Mapping[str, Any]) -> str:
            try:
                return "".join(tmpl.root_render_func(tmpl.new_context({**base, **ctx}, shared=True)))
            except _ERRORS as exc:
                raise ExprError(f"{type(exc).__name__}: {exc}") from None

        return render

    def node_of(self, fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        """The jinja expression node behind `fn` when it runs as closures (so it can be written as
        Python with the same meaning); None when it renders through the template."""
        return self._nodes.get(fn)


__all__ = ["ExprError", "Expressions", "TemplateSyntaxError", "age", "id_card_birthday", "now"]

"""One generated Python function per `fields` block, written and compiled once at load.

Why generated rather than hand-written closures: the closures of compile.py cost a call per
field, a scope and a context dict per expression and a closure call per expression node; for a
report of 80 fields that was most of a translation. Like dataclasses and attrs writing
`__init__`, this writes what one would write by hand for one particular mapping (straight-line
reads into locals, code tables and converters bound as globals of the function, nested target
objects held in locals, expressions as plain Python) and compiles it with `compile()`. Each rule
is written from a recipe the compiler records next to its closure; a rule with no recipe (a list
or a nested object) is called as its closure. The closures stay the reference semantics
(`load_mappings(generate=False)`), and tests/translate/test_codegen.py compares both on every
sample mapping, its spec tests and mutations of their records, errors included.
"""

from __future__ import annotations

import copy
import itertools
import keyword
import linecache
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Undefined

from engine.translate.codes import CodeMapLookup, key_of
from engine.translate.errors import TranslateError
from engine.translate.expr import _ERRORS, ExprError, Expressions, _value
from engine.translate.formats import ConvertError
from engine.translate.paths import MISSING, Scope, put_nested
from engine.translate.pysource import Memo, PySource, Unsupported, accessors

Token = str | int
PathSpec = tuple[bool, tuple[Token, ...]]
"""(from the record root, tokens) as paths.parse gives it."""
Where = Callable[[Scope], str]
RuleFn = Callable[[Scope], Any]
Builder = Callable[[Scope], dict[str, Any]]
CodeLookup = Callable[[Any, str, str, str], Any]

NO_ROW: dict[str, Any] = {}
"""What a key read sees when the current item is not an object: nothing."""


# -- recipes: what a rule does, recorded by the compiler ----------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class Paths:
    """`from`: one or more record paths; the first with a value wins."""

    paths: tuple[PathSpec, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Const:
    """`value:` (deep-copied per record when it is a list or an object)."""

    value: Any
    copy: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Expr:
    source: str
    fn: Callable[[Mapping[str, Any]], Any]
    """The compiled expression (called with a context dict where it cannot be written as Python)."""


@dataclass(frozen=True, slots=True, eq=False)
class Value:
    """A produced value, then codes, date, number and type (Compiler._transforms)."""

    produce: Paths | Const | Expr
    where: Where
    lookup: CodeLookup | None
    code_map: str | None
    steps: tuple[Callable[[Any], Any], ...]
    has_default: bool
    default: Any
    empty_out: Any
    tname: str


@dataclass(frozen=True, slots=True, eq=False)
class Each:
    """`each`: every item of one or more lists through the item builder, optionally filtered by `where`."""

    lists: tuple[tuple[PathSpec, Where, Builder], ...]
    keep: Expr | None
    tname: str


@dataclass(frozen=True, slots=True, eq=False)
class Fixed:
    """Always this value (a target spec's default), or nothing at all (a rule that failed to compile)."""

    value: Any


Recipe = Value | Each | Fixed
Step = tuple[tuple[str, ...], RuleFn, Recipe | None]
"""(target path, the rule's closure, its recipe if it has one)."""

_EMPTY = "v is M or v is None or v == ''"
_NOT_YET: Any = type("NotYet", (), {"__repr__": lambda self: "NOT_YET"})()
"""A remembered call not worked out yet for this record (pysource.Memo)."""
_counter = itertools.count()


class Generator:
    """Writes the builders of one mapping. `helpers`: the names every expression sees besides the
    record (code_label, map_code)."""

    def __init__(self, mapping_id: str, exprs: Expressions, helpers: Mapping[str, Any]) -> None:
        self.mapping_id = mapping_id
        self.exprs = exprs
        self.helpers = dict(helpers)
        self.sources: list[str] = []
        """Every function written for this mapping, outermost last (for `specbridge map --code`)."""
        attr, item, call = accessors(exprs.env)

        def expr_failed(text: str, s: Scope, tname: str) -> TranslateError:
            return TranslateError(f"expression failed: {text}", mapping=mapping_id, field=_join(s.tgt, tname), source=s.src)

        def convert_failed(exc: ConvertError, s: Scope, tname: str, where: Where, v: Any) -> TranslateError:
            return TranslateError(str(exc), mapping=mapping_id, field=_join(s.tgt, tname), source=where(s), value=v)

        def where_failed(text: str, field: str, source: str) -> TranslateError:
            return TranslateError(f"`where` failed: {text}", mapping=mapping_id, field=field, source=source)

        self.globals: dict[str, Any] = {
            "M": MISSING, "NO_ROW": NO_ROW, "DEEPCOPY": copy.deepcopy, "MAPPING": mapping_id, "KEY_OF": key_of, "join": _join,
            "PUT": put_nested, "ATTR": attr, "ITEM": item, "CALL": call, "UNDEFINED": Undefined, "VALUE": _value,
            "EXPR_ERRORS": _ERRORS, "ExprError": ExprError, "ConvertError": ConvertError,
            "EXPR_FAILED": expr_failed, "CONVERT_FAILED": convert_failed, "WHERE_FAILED": where_failed,
            "Scope": Scope, "NOT_YET": _NOT_YET,
        }

    def builder(self, steps: list[Step], label: str) -> Builder:
        counted = _Writer(self, label, Memo())  # a first pass counts the calls worth remembering
        counted.write(steps)
        w = _Writer(self, label, Memo(counted.memo.counts))
        w.write(steps)
        src = w.source()
        filename = f"<mapping {self.mapping_id}: {label}>"
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # tracebacks show the code
        exec(compile(src, filename, "exec"), w.ns)  # our own code, written above from a loaded mapping
        self.sources.append(src)
        fn: Builder = w.ns[w.name]
        return fn


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


_LOCALS = frozenset({"s", "out", "cur", "row", "root", "root_row", "v", "got", "exc", "lst", "found", "base_src", "base_tgt",
                     "single", "i", "item", "sub", "ok", "isinstance", "type", "len", "enumerate", "slice", "str", "dict", "list"})
"""Names the generated functions use for their locals and builtins: never a global's."""
_NUMBERED = re.compile(r"(o|once)\d+")


def _ident(hint: str) -> str:
    s = re.sub(r"\W", "_", hint, flags=re.ASCII).strip("_") or "c"
    return f"c_{s}" if s[0].isdigit() or keyword.iskeyword(s) else s


class _Writer:
    """The source of one builder and the globals it runs with."""

    def __init__(self, gen: Generator, label: str, memo: Memo) -> None:
        self.gen = gen
        self.memo = memo
        self.ns: dict[str, Any] = dict(gen.globals)
        self._ids: dict[int, str] = {}
        self.name = _ident(f"build_{gen.mapping_id}_{label}")
        self.body: list[str] = []
        self.uses: set[str] = set()
        self.parents: dict[tuple[str, ...], str] = {}
        self.generic_put = False

    # -- names ----------------------------------------------------------------------------------
    def ref(self, obj: Any, hint: str) -> str:
        """A global of the generated function bound to `obj`."""
        name = self._ids.get(id(obj))
        if name is None:
            name = base = _ident(hint)
            while name in self.ns or name in _LOCALS or _NUMBERED.fullmatch(name):
                name = f"{base}_{next(_counter)}"
            self.ns[name] = obj
            self._ids[id(obj)] = name
        return name

    def const(self, value: Any, hint: str) -> str:
        return repr(value) if type(value) in (str, int, bool, type(None)) else self.ref(value, hint)

    # -- the function -----------------------------------------------------------------------------
    def write(self, steps: list[Step]) -> None:
        fulls = {parts for parts, _fn, _r in steps}
        self.generic_put = any(parts[:i] in fulls for parts, _fn, _r in steps for i in range(1, len(parts)))
        for parts, fn, recipe in steps:
            self.step(parts, fn, recipe)

    def source(self) -> str:
        head = [f"def {self.name}(s):", "    out = {}"]
        if self.uses & {"cur", "row"}:
            head.append("    cur = s.cur")
        if "row" in self.uses:
            head.append("    row = cur if isinstance(cur, dict) else NO_ROW")
        if self.uses & {"root", "root_row"}:
            head.append("    root = s.root")
        if "root_row" in self.uses:
            head.append("    root_row = root if isinstance(root, dict) else NO_ROW")
        if self.parents:
            head.append("    " + " = ".join(self.parents.values()) + " = None")
        for var, shown in self.memo.shown.items():
            head.append(f"    {var} = NOT_YET  # {shown}")
        return "\n".join(head + ["    " + line for line in self.body] + ["    return out", ""])

    def put(self, parts: tuple[str, ...], value: str) -> list[str]:
        """Lines writing `value` at target `parts` (parents created on the first write, as the walk does)."""
        parent, name = parts[:-1], parts[-1]
        if not parent:
            return [f"out[{name!r}] = {value}"]
        if self.generic_put:
            return [f"PUT(out, {parent!r}, {name!r}, {value})"]
        return [*self.ensure(parent), f"{self.parents[parent]}[{name!r}] = {value}"]

    def ensure(self, parent: tuple[str, ...]) -> list[str]:
        var = self.parents.get(parent)
        if var is None:
            var = self.parents[parent] = f"o{len(self.parents) + 1}"
        if len(parent) == 1:
            return [f"if {var} is None: {var} = out[{parent[0]!r}] = {{}}"]
        up = self.ensure(parent[:-1])
        return [f"if {var} is None:", *_indent(up), f"    {var} = {self.parents[parent[:-1]]}[{parent[-1]!r}] = {{}}"]

    # -- one step ---------------------------------------------------------------------------------
    def step(self, parts: tuple[str, ...], fn: RuleFn, recipe: Recipe | None) -> None:
        target = ".".join(parts)
        if isinstance(recipe, Fixed):
            if recipe.value is not MISSING:
                self.body += [f"# {target}: the target's default", *self.put(parts, self.const(recipe.value, "default"))]
            return
        if isinstance(recipe, Value):
            self.body += [f"# {target}", *self.value(parts, recipe)]
            return
        if isinstance(recipe, Each):
            self.body += [f"# {target}: each", *self.each(parts, recipe)]
            return
        self.body += [f"# {target}: {getattr(fn, '__qualname__', 'rule').split('.')[-1]}",
                      f"v = {self.ref(fn, 'rule_' + target)}(s)", "if v is not M:", *_indent(self.put(parts, "v"))]

    def value(self, parts: tuple[str, ...], r: Value) -> list[str]:
        p = r.produce
        out: list[str] = []
        if isinstance(p, Const) and not p.copy and r.lookup is None and not r.steps:  # known at load
            v = p.value
            empty = v is MISSING or v is None or v == ""
            if not empty:
                return self.put(parts, self.const(v, "value"))
            return self.empty(parts, r)
        if isinstance(p, Const):
            out.append(f"v = DEEPCOPY({self.ref(p.value, 'value')})" if p.copy else f"v = {self.ref(p.value, 'value')}")
        elif isinstance(p, Paths):
            out += self.paths(p)
        else:
            out += self.expr(p, r.tname)
        simple = r.lookup is None and not r.steps
        if simple and not r.has_default and r.empty_out is MISSING:
            return [*out, f"if not ({_EMPTY}):", *_indent(self.put(parts, "v"))]
        if simple and (r.has_default or r.empty_out is not MISSING):
            fill = self.const(r.default if r.has_default else r.empty_out, "default")
            return [*out, *self.put(parts, f"{fill} if {_EMPTY} else v")]
        empty = self.empty(parts, r)
        if not empty:
            return [*out, f"if not ({_EMPTY}):", *_indent(self.transform(parts, r))]
        return [*out, f"if {_EMPTY}:", *_indent(empty), "else:", *_indent(self.transform(parts, r))]

    def empty(self, parts: tuple[str, ...], r: Value) -> list[str]:
        """What an absent value gives: the default, "" (absent: empty) or nothing."""
        if r.has_default:
            return self.put(parts, self.const(r.default, "default"))
        if r.empty_out is not MISSING:
            return self.put(parts, self.const(r.empty_out, "empty"))
        return []

    def transform(self, parts: tuple[str, ...], r: Value) -> list[str]:
        lines: list[str] = []
        may_miss = False
        if r.lookup is not None:
            lk, hint = r.lookup, r.code_map or "codes"
            key = "(v.strip() if type(v) is str else KEY_OF(v))"
            where = self.ref(r.where, f"where_{r.tname}")
            miss = f"{self.ref(lk, 'lookup_' + hint)}(v, join(s.tgt, {r.tname!r}), {where}(s), MAPPING)"
            if isinstance(lk, CodeMapLookup):
                table = self.ref(lk.table, "codes_" + hint)
                if lk.has_default:
                    lines.append(f"v = {table}.get({key}, {self.const(lk.default, 'default_' + hint)})")
                elif lk.unmapped == "keep":
                    lines.append(f"v = {table}.get({key}, v)")
                elif lk.unmapped == "omit":
                    lines.append(f"v = {table}.get({key}, M)")
                    may_miss = True
                else:
                    lines += [f"got = {table}.get({key}, M)", f"v = got if got is not M else {miss}  # unmapped: raises"]
            else:
                lines.append(f"v = {miss}")
                may_miss = True
        rest: list[str] = []
        if r.steps:
            rest.append("try:")
            for f in r.steps:
                rest.append(f"    v = {self.ref(f, getattr(f, '__qualname__', 'convert').split('.')[0] + '_' + r.tname)}(v)")
            where = self.ref(r.where, f"where_{r.tname}")
            rest += ["except ConvertError as exc:", f"    raise CONVERT_FAILED(exc, s, {r.tname!r}, {where}, v) from None"]
        rest += self.put(parts, "v")
        if may_miss:
            empty = self.empty_out(parts, r)
            if not empty:
                return [*lines, "if v is not M:", *_indent(rest)]
            return [*lines, "if v is M:", *_indent(empty), "else:", *_indent(rest)]
        return lines + rest

    def empty_out(self, parts: tuple[str, ...], r: Value) -> list[str]:
        return self.put(parts, self.const(r.empty_out, "empty")) if r.empty_out is not MISSING else []

    # -- producers --------------------------------------------------------------------------------
    def paths(self, p: Paths) -> list[str]:
        """Each further path is read only where the ones before it gave no value."""
        lines: list[str] = []
        for spec in reversed(p.paths):
            lines = [*self.path(spec), *([f"if {_EMPTY}:", *_indent(lines)] if lines else [])]
        return lines

    def path(self, spec: PathSpec) -> list[str]:
        """Lines leaving in `v` what paths.getter reads at this path (MISSING where it leads nowhere)."""
        from_root, tokens = spec
        base = "root" if from_root else "cur"
        if not tokens:
            self.uses.add(base)
            return [f"v = {base}"]
        lines: list[str] = []
        first, *rest = tokens
        if isinstance(first, str):
            row = "root_row" if from_root else "row"
            self.uses.add(row)
            lines.append(f"v = {row}.get({first!r}, M)")
        else:
            self.uses.add(base)
            lines.append(f"v = {base}")
            rest = list(tokens)
        for t in rest:
            if isinstance(t, str):
                lines.append(f"v = v.get({t!r}, M) if isinstance(v, dict) else M")
            elif t == 0:  # one object counts as a one-item list
                lines.append("v = v if isinstance(v, dict) else v[0] if isinstance(v, list) and len(v) > 0 else M")
            else:
                lines.append(f"v = v[{t}] if isinstance(v, list) and len(v) > {t} else M")
        return lines

    def python(self, e: Expr, names: dict[str, str], memo: Memo | None) -> str | None:
        """The expression as Python source over `names` (record, item, index, request...), None if it is not in the subset."""
        node = self.gen.exprs.node_of(e.fn)
        if node is None:
            return None
        helpers, exprs = self.gen.helpers, self.gen.exprs
        names = {**names, **{k: self.ref(v, k) for k, v in helpers.items()}}
        own = {id(helpers["map_code"])} if "map_code" in helpers else set()  # the compiler's own: pure, never StopIteration
        ps = PySource(exprs.env, exprs.env.globals, names, self.ref, helpers, exprs.direct | own, exprs.pure | own, memo)
        try:
            return ps.expr(node)
        except Unsupported:
            return None

    def context(self, names: dict[str, str]) -> str:
        """The context dict a template expression is called with."""
        pairs = [*(f"{k!r}: {v}" for k, v in names.items()), *(f"{k!r}: {self.ref(v, k)}" for k, v in self.gen.helpers.items())]
        return "{" + ", ".join(pairs) + "}"

    def expr(self, e: Expr, tname: str) -> list[str]:
        self.uses |= {"root", "cur"}
        names = {"record": "root", "item": "cur", "index": "s.index", "request": "s.request"}
        code = self.python(e, names, self.memo)
        if code is not None:
            return [f"try:  # {_oneline(e.source)}", f"    v = {code}", "    if isinstance(v, UNDEFINED): v = VALUE(v)",
                    "except EXPR_ERRORS as exc:", f"    raise EXPR_FAILED(f'{{type(exc).__name__}}: {{exc}}', s, {tname!r}) from None"]
        return [f"try:  # {_oneline(e.source)} (as a template)", f"    v = {self.ref(e.fn, 'expr_' + tname)}({self.context(names)})",
                "except ExprError as exc:", f"    raise EXPR_FAILED(str(exc), s, {tname!r}) from None"]

    # -- lists ------------------------------------------------------------------------------------
    def each(self, parts: tuple[str, ...], r: Each) -> list[str]:
        """compile.Compiler._each, inline: the item builders are functions of their own."""
        self.uses |= {"root", "cur"}
        lines = ["lst = []", "found = False"]
        for spec, where, build in r.lists:
            from_root, tokens = spec
            if not tokens and not from_root:
                base_src = "s.src"
            elif len(tokens) == 1 and isinstance(tokens[0], str) and not from_root:
                base_src = f"join(s.src, {tokens[0]!r})"
            else:
                base_src = f"{self.ref(where, 'where_' + r.tname)}(s)"
            item = ["sub = Scope(root, item, base_src if single else f'{base_src}[{i}]', f'{base_tgt}[{len(lst)}]', i, s.request)"]
            if r.keep is not None:
                item += self.keep(r.keep)
            item.append(f"lst.append({self.ref(build, 'build_' + r.tname)}(sub))")
            lines += [*self.path(spec), "if v is not M and v is not None:", *_indent([
                "found = True", f"base_src = {base_src}", f"base_tgt = join(s.tgt, {r.tname!r})", "single = not isinstance(v, list)",
                "for i, item in enumerate([v] if single else v):", *_indent(item)])]
        return [*lines, "if found:", *_indent(self.put(parts, "lst"))]

    def keep(self, e: Expr) -> list[str]:
        """`where`: skip the item unless the expression holds (per item: never remembered across items)."""
        names = {"record": "root", "item": "item", "outer": "cur", "index": "i", "request": "s.request"}
        code = self.python(e, names, None)
        if code is not None:
            test = [f"try:  # where {_oneline(e.source)}", f"    ok = {code}", "    if isinstance(ok, UNDEFINED): ok = VALUE(ok)",
                    "except EXPR_ERRORS as exc:", "    raise WHERE_FAILED(f'{type(exc).__name__}: {exc}', base_tgt, sub.src) from None"]
        else:
            test = [f"try:  # where {_oneline(e.source)} (as a template)", f"    ok = {self.ref(e.fn, 'where')}({self.context(names)})",
                    "except ExprError as exc:", "    raise WHERE_FAILED(str(exc), base_tgt, sub.src) from None"]
        return [*test, "if not ok or ok in ('false', 'False', '0'):", "    continue"]


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _oneline(text: str) -> str:
    return " ".join(text.split())


__all__ = ["Const", "Expr", "Fixed", "Generator", "Paths", "Value"]

"""Compile a mapping into plain closures, once, at load.

Every rule becomes `fn(scope) -> value | MISSING`; a `fields` block becomes a builder that calls
its rules and writes their values at precomputed target paths. Translating a record is then
dict reads, a few function calls per field and no parsing at all: paths, date formats, code maps
and templates were all resolved here.

These closures are the reference semantics. By default (`generate=True`) each rule also leaves a
recipe (codegen.py) and a `fields` block becomes one generated function that does what its
closures do, inline; rules without a recipe are called as closures from it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import msgspec
from jinja2 import TemplateSyntaxError

from engine.spec.dates import FormatError
from engine.spec.nodes import Node
from engine.translate.codegen import Const, Each, Expr, Fixed, Generator, Paths, Recipe, Value
from engine.translate.codes import key_of
from engine.translate.errors import TranslateError
from engine.translate.expr import ExprError, Expressions
from engine.translate.formats import ConvertError, cast, date_converter, number_converter
from engine.translate.model import Rule, RuleSpec
from engine.translate.nodes import ANY, item_of, walk
from engine.translate.paths import MISSING, PathError, Scope, getter, parse, put_nested, target_parts

RuleFn = Callable[[Scope], Any]
Builder = Callable[[Scope], dict[str, Any]]
Report = Callable[[tuple[Any, ...], str], None]
CodeLookup = Callable[[Any, str, str, str], Any]


def join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _empty(v: Any) -> bool:
    return v is MISSING or v is None or v == ""


def _one_key(path: Any) -> str | None:
    """`KEY` for a `from` that reads one key of the current object (not `$.`, no dots or indices)."""
    if not isinstance(path, str):
        return None
    try:
        from_root, tokens = parse(path)
    except PathError:
        return None
    return tokens[0] if not from_root and len(tokens) == 1 and isinstance(tokens[0], str) else None


_NO_ROW: dict[str, Any] = {}
"""What a `Copy` reads when the current item is not an object: nothing."""


class Copy:
    """The rule `target: KEY`: one key of the current object, omitted when absent, null or "".
    The commonest rule, so `fields` builders read it inline; calling it does the same."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, s: Scope) -> Any:
        c = s.cur
        v = c.get(self.key, MISSING) if isinstance(c, dict) else MISSING
        return MISSING if _empty(v) else v


class Compiler:
    """Compiles the rules of one mapping. Problems are reported (file:line) rather than raised, so
    one load shows them all; a rule that failed to compile yields nothing at run time."""

    def __init__(
        self,
        mapping_id: str,
        exprs: Expressions,
        code_maps: dict[str, CodeLookup],
        report: Report,
        code_label: Callable[[str, Any], str | None],
        absent: str = "omit",
        root_node: Node | None = None,
        generate: bool = True,
    ) -> None:
        def map_code(cid: str, code: Any) -> Any:
            """`map_code(map, code)` in expressions: the code map's answer, None when it has none."""
            fn = code_maps.get(cid)
            if fn is None:
                raise ExprError(f"unknown code map `{cid}`")
            if code is None or code == "":
                return None
            try:
                v = fn(code, "", "", mapping_id)
            except TranslateError:
                return None
            return None if v is MISSING else v

        self.helpers = {"code_label": code_label, "map_code": map_code}
        self.mapping_id = mapping_id
        self.exprs = exprs
        self.code_maps = code_maps
        self.report = report
        self.code_label = code_label
        self.absent = absent
        self.root_node = root_node
        """The source's root node, for `$.` paths inside `each`."""
        self.recipes: dict[RuleFn, Recipe] = {}
        """What a rule's closure does, for the generator (closures without one are called as they are)."""
        self.generator = Generator(mapping_id, exprs, self.helpers) if generate else None

    def _nothing(self) -> RuleFn:
        """The rule that yields nothing (one that failed to compile)."""
        fn: RuleFn = lambda _s: MISSING  # noqa: E731
        self.recipes[fn] = Fixed(MISSING)
        return fn

    # -- fields blocks ------------------------------------------------------------------
    def fields(self, fields: dict[str, RuleSpec], tnode: Node | None, snode: Node | None, ypath: tuple[Any, ...]) -> Builder:
        plan: list[tuple[tuple[str, ...], RuleFn]] = []
        mapped: set[str] = set()
        for tpath, rule in fields.items():
            try:
                parts = target_parts(tpath)
            except PathError as exc:
                self.report((*ypath, tpath), str(exc))
                continue
            mapped.add(parts[0])
            tchild, _ = walk(tnode, parts) if tnode is not None else (ANY, 0)
            plan.append((parts, self.rule(rule, tchild, snode, (*ypath, tpath), tpath)))
        # A required target field the mapping leaves out but whose spec declares a default gets it.
        for name, child in ((tnode.children or {}) if tnode is not None and tnode is not ANY else {}).items():
            if name not in mapped and child.required and child.spec is not None and child.spec.default is not None:
                const = child.spec.default
                plan.append(((name,), lambda _s, c=const: c))
                self.recipes[plan[-1][1]] = Fixed(const)
        if self.generator is not None:
            return self.generator.builder([(parts, fn, self.recipes.get(fn)) for parts, fn in plan], ".".join(map(str, ypath)))
        # Copies of one key (most fields of most mappings) are read inline, not through their rule.
        steps = [(parts[:-1], parts[-1], fn.key if isinstance(fn, Copy) else None, fn) for parts, fn in plan]

        def build(scope: Scope) -> dict[str, Any]:
            out: dict[str, Any] = {}
            cur = scope.cur
            row = cur if isinstance(cur, dict) else _NO_ROW
            for parent, name, key, fn in steps:
                if key is not None:
                    v = row.get(key, MISSING)
                    if v is MISSING or v is None or v == "":
                        continue
                else:
                    v = fn(scope)
                    if v is MISSING:
                        continue
                if not parent:  # most targets are plain keys
                    out[name] = v
                    continue
                put_nested(out, parent, name, v)
            return out

        return build

    # -- one rule -------------------------------------------------------------------------
    def rule(self, spec: RuleSpec, tnode: Node | None, snode: Node | None, ypath: tuple[Any, ...], tname: str) -> RuleFn:
        rule = spec if isinstance(spec, Rule) else Rule(from_=spec)
        producers = [
            k
            for k, on in (
                ("from", rule.from_ is not None and not (rule.fields is not None and rule.each is None)),
                ("value", rule.value is not msgspec.UNSET),
                ("expr", rule.expr is not None),
                ("each", rule.each is not None),
                ("fields", rule.fields is not None and rule.each is None),
            )
            if on
        ]
        if len(producers) != 1:
            what = "none" if not producers else " and ".join(producers)
            self.report(ypath, f"a rule needs exactly one of from, value, expr, each or fields (found {what})")
            return self._nothing()
        if rule.each is not None and rule.fields is None:
            self.report(ypath, "`each` needs `fields` (the fields of one target item)")
            return self._nothing()
        if rule.where is not None and rule.each is None:
            self.report((*ypath, "where"), "`where` only filters the items of `each`")
        kind = producers[0]
        if kind == "each":
            return self._each(rule, tnode, snode, ypath, tname)
        if kind == "fields":
            return self._object(rule, tnode, snode, ypath, tname)
        produce, src_node, src_where, made = self._producer(kind, rule, snode, ypath)
        key = _one_key(rule.from_) if kind == "from" else None
        fn, value = self._transforms(rule, produce, src_where, tnode, src_node, ypath, tname, key=key)
        self.recipes[fn] = Value(made, src_where, *value)
        return fn

    def _producer(
        self, kind: str, rule: Rule, snode: Node | None, ypath: tuple[Any, ...]
    ) -> tuple[RuleFn, Node | None, Callable[[Scope], str], Paths | Const | Expr]:
        """(produce, source node, where, the producer's recipe)."""
        if kind == "value":
            const = rule.value
            if isinstance(const, (dict, list)):
                return (lambda _s: copy.deepcopy(const)), None, (lambda _s: "(constant)"), Const(const, copy=True)
            return (lambda _s: const), None, (lambda _s: "(constant)"), Const(const)
        if kind == "expr":
            assert rule.expr is not None
            try:
                fn = self.exprs.compile(rule.expr)
            except TemplateSyntaxError as exc:
                self.report((*ypath, "expr"), f"expression syntax: {exc.message} (line {exc.lineno} of the expression)")
                return (lambda _s: MISSING), None, (lambda _s: ""), Const(MISSING)
            helpers = self.helpers

            def ev(s: Scope) -> Any:
                return fn({"record": s.root, "item": s.cur, "index": s.index, "request": s.request, **helpers})

            return ev, None, (lambda s: s.src), Expr(rule.expr, fn)
        paths = [rule.from_] if isinstance(rule.from_, str) else list(rule.from_ or [])
        getters = []
        specs = []
        first_node: Node | None = None
        for i, p in enumerate(paths):
            try:
                g, w = getter(p)
            except PathError as exc:
                self.report((*ypath, "from"), str(exc))
                continue
            getters.append((g, w))
            specs.append(parse(p))
            if i == 0 and snode is not None:
                from_root, tokens = parse(p)
                first_node = walk(self._root_of(snode) if from_root else snode, tokens)[0]
        if not getters:
            return (lambda _s: MISSING), None, (lambda _s: ""), Const(MISSING)
        read = Paths(tuple(specs))
        if len(getters) == 1:
            g0, w0 = getters[0]
            return g0, first_node, w0, read

        def coalesce(s: Scope) -> Any:
            for g, _w in getters:
                v = g(s)
                if not _empty(v):
                    return v
            return MISSING

        def where_multi(s: Scope) -> str:
            for g, w in getters:
                if not _empty(g(s)):
                    return w(s)
            return getters[0][1](s)

        return coalesce, first_node, where_multi, read

    def _root_of(self, snode: Node) -> Node | None:
        return self.root_node if self.root_node is not None else snode

    # -- transforms -----------------------------------------------------------------------
    def _transforms(
        self,
        rule: Rule,
        produce: RuleFn,
        src_where: Callable[[Scope], str],
        tnode: Node | None,
        src_node: Node | None,
        ypath: tuple[Any, ...],
        tname: str,
        key: str | None = None,
    ) -> tuple[RuleFn, tuple[Any, ...]]:
        """`key`: the one key of the current object `produce` reads, if that is all it does. Returns
        the rule and what codegen.Value needs besides producer and where (lookup ... tname)."""
        steps: list[Callable[[Any], Any]] = []
        code_lookup: CodeLookup | None = None
        if rule.codes is not None:
            code_lookup = self.code_maps.get(rule.codes)
            if code_lookup is None:
                cid = rule.codes

                def unknown(_v: Any, field: str, source: str, mapping: str) -> Any:
                    raise TranslateError(f"unknown code map `{cid}`", mapping=mapping, field=field, source=source)

                code_lookup = unknown
        if rule.date is not None:
            fin = rule.date.in_ or (src_node.date.spec if src_node is not None and src_node is not ANY and src_node.date else None)
            fout = rule.date.out or (tnode.date.spec if tnode is not None and tnode is not ANY and tnode.date else None)
            if fin is None or fout is None:
                side = "in" if fin is None else "out"
                which = "source" if side == "in" else "target"
                self.report((*ypath, "date"), f"date: `{side}` is not given and the {which} field has no date format")
            else:
                try:
                    steps.append(date_converter(fin, fout))
                except FormatError as exc:
                    self.report((*ypath, "date"), f"date: {exc}")
        if rule.number is not None:
            n = rule.number
            steps.append(number_converter(n.scale, n.as_, n.rounding))
        if rule.type is not None:
            steps.append(cast(rule.type))
        has_default = rule.default is not msgspec.UNSET
        default = rule.default
        scalar_target = tnode is None or tnode is ANY or not (tnode.is_list or tnode.is_object)
        empty_out: Any = "" if self.absent == "empty" and scalar_target else MISSING
        mapping_id = self.mapping_id
        table: dict[str, Any] | None = getattr(code_lookup, "table", None)
        """A code map's own entries, looked up first: the error paths are only worked out on a miss."""
        value = (code_lookup, rule.codes, tuple(steps), has_default, default, empty_out, tname)

        if code_lookup is None and not steps and rule.expr is None:  # the common case: copy a value
            if not has_default:
                if empty_out is MISSING:
                    return (Copy(key) if key is not None else lambda s: MISSING if _empty(v := produce(s)) else v), value
                return (lambda s: empty_out if _empty(v := produce(s)) else v), value

            def with_default(s: Scope) -> Any:
                v = produce(s)
                return default if _empty(v) else v

            return with_default, value

        def run(s: Scope) -> Any:
            try:
                v = produce(s)
            except ExprError as exc:
                raise TranslateError(f"expression failed: {exc}", mapping=mapping_id, field=join(s.tgt, tname), source=s.src) from None
            if _empty(v):
                return default if has_default else empty_out
            if code_lookup is not None:
                got = MISSING if table is None else table.get(key_of(v), MISSING)
                v = got if got is not MISSING else code_lookup(v, join(s.tgt, tname), src_where(s), mapping_id)
                if v is MISSING:
                    return empty_out
            try:
                for fn in steps:
                    v = fn(v)
            except ConvertError as exc:
                raise TranslateError(str(exc), mapping=mapping_id, field=join(s.tgt, tname), source=src_where(s), value=v) from None
            return v

        return run, value

    # -- lists and nested objects ---------------------------------------------------------
    def _each(self, rule: Rule, tnode: Node | None, snode: Node | None, ypath: tuple[Any, ...], tname: str) -> RuleFn:
        assert rule.each is not None and rule.fields is not None
        item_tnode = item_of(tnode) if tnode is not None and tnode is not ANY and tnode.is_list else tnode
        lists: list[tuple[Callable[[Scope], Any], Callable[[Scope], str], Builder]] = []
        specs: list[tuple[bool, tuple[str | int, ...]]] = []
        report = self.report
        for n, path in enumerate([rule.each] if isinstance(rule.each, str) else rule.each):
            try:
                get, where = getter(path)
                from_root, tokens = parse(path)
            except PathError as exc:
                report((*ypath, "each"), str(exc))
                continue
            base = self._root_of(snode) if (from_root and snode is not None) else snode
            list_node = walk(base, tokens)[0] if snode is not None else None
            item_snode = list_node if list_node is None or list_node is ANY or not list_node.is_list else item_of(list_node)
            if n:  # the same fields again, against the next list's items: report their problems once
                self.report = lambda _p, _m: None
            try:
                lists.append((get, where, self.fields(rule.fields, item_tnode, item_snode, (*ypath, "fields"))))
                specs.append((from_root, tokens))
            finally:
                self.report = report
        if not lists:
            return self._nothing()
        keep: Callable[[dict[str, Any]], Any] | None = None
        if rule.where is not None:
            try:
                keep = self.exprs.compile(rule.where)
            except TemplateSyntaxError as exc:
                self.report((*ypath, "where"), f"expression syntax: {exc.message}")
        helpers = self.helpers
        mapping_id = self.mapping_id

        def each(s: Scope) -> Any:
            out: list[Any] = []
            found = False
            base_tgt = join(s.tgt, tname)
            for get, where, build in lists:  # several lists: their items one after another
                src = get(s)
                if src is MISSING or src is None:
                    continue
                found = True
                base_src = where(s)
                items = src if isinstance(src, list) else [src]
                single = not isinstance(src, list)
                for i, item in enumerate(items):
                    sub = Scope(s.root, item, base_src if single else f"{base_src}[{i}]", f"{base_tgt}[{len(out)}]", i, s.request)
                    if keep is not None:
                        try:
                            ok = keep({"record": s.root, "item": item, "outer": s.cur, "index": i, "request": s.request, **helpers})
                        except ExprError as exc:
                            raise TranslateError(f"`where` failed: {exc}", mapping=mapping_id, field=base_tgt, source=sub.src) from None
                        if not ok or ok in ("false", "False", "0"):
                            continue
                    out.append(build(sub))
            return out if found else MISSING

        self.recipes[each] = Each(tuple((spec, w, b) for spec, (_g, w, b) in zip(specs, lists, strict=True)),
                                  Expr(rule.where, keep) if rule.where is not None and keep is not None else None, tname)
        return each

    def _object(self, rule: Rule, tnode: Node | None, snode: Node | None, ypath: tuple[Any, ...], tname: str) -> RuleFn:
        assert rule.fields is not None
        get: RuleFn | None = None
        where: Callable[[Scope], str] | None = None
        sub_snode = snode
        if rule.from_ is not None:
            if not isinstance(rule.from_, str):
                self.report((*ypath, "from"), "with `fields`, `from` is one path (the object the fields read from)")
                return self._nothing()
            try:
                get, where = getter(rule.from_)
                from_root, tokens = parse(rule.from_)
            except PathError as exc:
                self.report((*ypath, "from"), str(exc))
                return self._nothing()
            if snode is not None:
                sub_snode = walk(self._root_of(snode) if from_root else snode, tokens)[0]
        build = self.fields(rule.fields, tnode, sub_snode, (*ypath, "fields"))

        def obj(s: Scope) -> Any:
            sub = s
            if get is not None and where is not None:
                cur = get(s)
                if cur is MISSING or cur is None:
                    return MISSING
                sub = Scope(s.root, cur, where(s), join(s.tgt, tname), s.index, s.request)
            else:
                sub = Scope(s.root, s.cur, s.src, join(s.tgt, tname), s.index, s.request)
            out = build(sub)
            return out if out else MISSING

        return obj


__all__ = ["Builder", "Compiler"]

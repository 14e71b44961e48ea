"""Common jinja expressions as plain Python closures, with the sandbox's exact semantics.

A mapping's `{{ record.a or id_card_birthday(record.b) }}` run through a template costs a context
(the environment's globals merged per call), a generator and the sandbox's call plumbing: about
10-20 us. Most rules use a small part of the language: names, `a.b`, `a['b']`, slices, literals,
`and`/`or`/`not`, `x if c else y`, comparisons, `~`, arithmetic, tests (`is none`), filters and
calls. Those nodes compile here, at load, into closures that call the very functions the
template's generated code calls (`environment.getattr`, `getitem`, `call`, the filter and test
functions), so every value, Undefined and error is the one the template would give. Two fast
paths skip the sandbox's indirection where the outcome is known: a key of a plain dict that is
not a dict attribute, and a call of a plain function already checked as safe.

Anything else (macros, `%`, `**`, dynamic arguments, unknown filters or tests, the name `result`)
returns None from `compile_expression`, and the caller keeps the template.
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg

Ctx = Mapping[str, Any]
Fn = Callable[[Ctx], Any]
ContextOf = Callable[[Ctx], Context]

_MISSING: Any = object()
_DICT_ATTRS = frozenset(dir(dict))
"""Names a plain dict answers as attributes: `record.items` is the method, as in the template."""

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gteq": operator.ge, "lt": operator.lt, "lteq": operator.le,
    "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}
_BINOP: dict[type[nodes.Node], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add, nodes.Sub: operator.sub, nodes.Mul: operator.mul, nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
}
_UNOP: dict[type[nodes.Node], Callable[[Any], Any]] = {nodes.Neg: operator.neg, nodes.Pos: operator.pos, nodes.Not: operator.not_}


class Unsupported(Exception):
    """A node outside the compiled subset: the expression stays a template."""


def compile_expression(env: SandboxedEnvironment, set_source: str, base: Mapping[str, Any], context_of: ContextOf) -> Fn | None:
    """`set_source` is `{%- set result = (EXPR) -%}`; returns EXPR as `fn(ctx)`, or None.

    `base` is the environment's globals (names not in ctx); `context_of(ctx)` builds the template
    context, needed only by functions that ask for it (`pass_context`, e.g. the `map` filter)."""
    if env.intercepted_binops or env.intercepted_unops:
        return None
    body = env.parse(set_source).body
    if len(body) != 1 or not isinstance(body[0], nodes.Assign):
        return None
    try:
        return _Builder(env, base, context_of).expr(body[0].node)
    except Unsupported:
        return None


class _Builder:
    def __init__(self, env: SandboxedEnvironment, base: Mapping[str, Any], context_of: ContextOf) -> None:
        self.env = env
        self.base = base
        self.context_of = context_of
        self.trusted: dict[int, Any] = {}
        """Plain functions found safe to call directly (by id, holding the function so ids stay unique)."""

    def expr(self, node: nodes.Node) -> Fn:
        visit = getattr(self, f"_{type(node).__name__.lower()}", None)
        if visit is None:
            raise Unsupported(type(node).__name__)
        return visit(node)  # type: ignore[no-any-return]

    # -- leaves ---------------------------------------------------------------------------
    def _const(self, node: nodes.Const) -> Fn:
        value = node.value
        return lambda _c: value

    def _name(self, node: nodes.Name) -> Fn:
        name = node.name
        if node.ctx != "load" or name == "result":  # `result` is the variable the template assigns
            raise Unsupported(name)
        base, undefined = self.base, self.env.undefined

        def load(c: Ctx) -> Any:
            v = c.get(name, _MISSING)
            if v is _MISSING:
                v = base.get(name, _MISSING)
                if v is _MISSING:
                    return undefined(name=name)
            return v

        return load

    def _list(self, node: nodes.List) -> Fn:
        items = [self.expr(i) for i in node.items]
        return lambda c: [f(c) for f in items]

    def _tuple(self, node: nodes.Tuple) -> Fn:
        items = [self.expr(i) for i in node.items]
        return lambda c: tuple(f(c) for f in items)

    def _dict(self, node: nodes.Dict) -> Fn:
        pairs = [(self.expr(p.key), self.expr(p.value)) for p in node.items]
        return lambda c: {k(c): v(c) for k, v in pairs}

    # -- access ---------------------------------------------------------------------------
    def _getattr(self, node: nodes.Getattr) -> Fn:
        obj, attr = self.expr(node.node), node.attr
        getattr_, undefined = self.env.getattr, self.env.undefined
        if attr in _DICT_ATTRS:
            return lambda c: getattr_(obj(c), attr)

        def get(c: Ctx) -> Any:
            o = obj(c)
            if type(o) is dict:  # what the sandbox does for a plain dict key that is no dict attribute
                v = o.get(attr, _MISSING)
                return undefined(obj=o, name=attr) if v is _MISSING else v
            return getattr_(o, attr)

        return get

    def _getitem(self, node: nodes.Getitem) -> Fn:
        obj = self.expr(node.node)
        if isinstance(node.arg, nodes.Slice):  # the template slices directly, bypassing getitem
            s = node.arg
            start, stop, step = (self.expr(x) if x is not None else None for x in (s.start, s.stop, s.step))
            return lambda c: obj(c)[slice(start(c) if start else None, stop(c) if stop else None, step(c) if step else None)]
        arg, getitem = self.expr(node.arg), self.env.getitem

        def get(c: Ctx) -> Any:
            o, a = obj(c), arg(c)
            if type(o) is dict and type(a) is str:
                v = o.get(a, _MISSING)
                if v is not _MISSING:
                    return v
            return getitem(o, a)

        return get

    # -- operators ------------------------------------------------------------------------
    def _and(self, node: nodes.And) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda c: left(c) and right(c)

    def _or(self, node: nodes.Or) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda c: left(c) or right(c)

    def _binop(self, node: nodes.BinExpr) -> Fn:
        op, left, right = _BINOP[type(node)], self.expr(node.left), self.expr(node.right)
        return lambda c: op(left(c), right(c))

    _add = _sub = _mul = _div = _floordiv = _binop

    def _unop(self, node: nodes.UnaryExpr) -> Fn:
        op, inner = _UNOP[type(node)], self.expr(node.node)
        return lambda c: op(inner(c))

    _neg = _pos = _not = _unop

    def _concat(self, node: nodes.Concat) -> Fn:
        if self.env.autoescape:  # markup_join: leave it to the template
            raise Unsupported("autoescape")
        parts = [self.expr(n) for n in node.nodes]
        return lambda c: "".join([str(p(c)) for p in parts])

    def _compare(self, node: nodes.Compare) -> Fn:
        first = self.expr(node.expr)
        ops = [(_COMPARE[o.op], self.expr(o.expr)) for o in node.ops]
        if len(ops) == 1:
            (op, right), = ops
            return lambda c: op(first(c), right(c))

        def chain(c: Ctx) -> Any:  # as Python evaluates `a < b < c`
            left = first(c)
            res: Any = True
            for op, right in ops:
                r = right(c)
                res = op(left, r)
                if not res:
                    return res
                left = r
            return res

        return chain

    def _condexpr(self, node: nodes.CondExpr) -> Fn:
        if node.expr2 is None:  # the template's undefined carries a position message: keep it
            raise Unsupported("if without else")
        test, yes, no = self.expr(node.test), self.expr(node.expr1), self.expr(node.expr2)
        return lambda c: yes(c) if test(c) else no(c)

    # -- calls, filters, tests --------------------------------------------------------------
    def _args(self, node: nodes.Call | nodes.Filter | nodes.Test) -> tuple[list[Fn], list[tuple[str, Fn]]]:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("*args")
        return [self.expr(a) for a in node.args], [(k.key, self.expr(k.value)) for k in node.kwargs]

    def _call(self, node: nodes.Call) -> Fn:
        callee = self.expr(node.node)
        args, kwargs = self._args(node)
        env, trusted, context_of = self.env, self.trusted, self.context_of
        stop_undefined = "value was undefined because a callable raised a StopIteration exception"

        def slow(c: Ctx, f: Any, a: list[Any], kw: dict[str, Any]) -> Any:
            if isinstance(f, types.FunctionType) and _plain(env, f):
                if len(trusted) < 256:
                    trusted[id(f)] = f
                try:
                    return f(*a, **kw)
                except StopIteration:
                    return env.undefined(stop_undefined)
            return env.call(context_of(c), f, *a, **kw)  # the template's own path (checks, pass_context)

        if kwargs:

            def call(c: Ctx) -> Any:
                f = callee(c)
                a = [x(c) for x in args]
                kw = {k: v(c) for k, v in kwargs}
                if trusted.get(id(f)) is not f:
                    return slow(c, f, a, kw)
                try:
                    return f(*a, **kw)
                except StopIteration:
                    return env.undefined(stop_undefined)

            return call

        def call_positional(c: Ctx) -> Any:  # the usual helper call: a checked function, positional arguments
            f = callee(c)
            a = [x(c) for x in args]
            if trusted.get(id(f)) is not f:
                return slow(c, f, a, {})
            try:
                return f(*a)
            except StopIteration:
                return env.undefined(stop_undefined)

        return call_positional

    def _filter(self, node: nodes.Filter) -> Fn:
        if node.node is None:
            raise Unsupported("filter block")
        func = self.env.filters.get(node.name)
        if func is None:
            raise Unsupported(f"filter {node.name}")
        return self._applied(func, self.expr(node.node), node)

    def _test(self, node: nodes.Test) -> Fn:
        func = self.env.tests.get(node.name)
        if func is None:
            raise Unsupported(f"test {node.name}")
        return self._applied(func, self.expr(node.node), node)

    def _applied(self, func: Callable[..., Any], value: Fn, node: nodes.Filter | nodes.Test) -> Fn:
        """`func(value, *args)` with what the template passes first (environment, eval context, context)."""
        args, kwargs = self._args(node)
        pass_arg = _PassArg.from_obj(func)
        env, context_of = self.env, self.context_of
        if pass_arg is None and not kwargs:
            if not args:
                return lambda c: func(value(c))
            return lambda c: func(value(c), *[a(c) for a in args])
        if pass_arg is None:
            return lambda c: func(value(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs})
        if pass_arg is _PassArg.environment:
            return lambda c: func(env, value(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs})

        def with_context(c: Ctx) -> Any:
            ctx = context_of(c)
            first = ctx if pass_arg is _PassArg.context else ctx.eval_ctx
            return func(first, value(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs})

        return with_context


def _plain(env: SandboxedEnvironment, f: Callable[..., Any]) -> bool:
    """Safe for the sandbox, and called as is: no pass_context/environment on it or its __call__."""
    return env.is_safe_callable(f) and _PassArg.from_obj(f) is None and _PassArg.from_obj(f.__call__) is None


__all__ = ["compile_expression"]

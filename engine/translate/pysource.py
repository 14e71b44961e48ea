"""Common jinja expressions written as Python source, for the generated builders (codegen.py).

pyexpr.py turns an expression into a tree of closures; this writes the same expression as one
Python expression inside a mapping's generated function, so `record.BIRTH_DATE or
id_card_birthday(record.ID_CARD)` costs what the equivalent hand-written Python costs. Each node
means exactly what the closure of pyexpr means (which means what the sandboxed template means):
attribute and item access go through the same two fast paths and otherwise the environment's own
`getattr`/`getitem`, filters and tests are the environment's functions, a call is only written
for a function fixed at load and already safe for the sandbox. Anything else raises Unsupported
and the caller evaluates the expression's closure instead.
"""

from __future__ import annotations

import keyword
import types
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg

from engine.translate.pyexpr import _DICT_ATTRS, Unsupported, _plain

Ref = Callable[[Any, str], str]
"""`ref(obj, hint)`: the name under which `obj` is visible to the generated code."""

_OPS = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<=", "in": "in", "notin": "not in"}
_BIN = {nodes.Add: "+", nodes.Sub: "-", nodes.Mul: "*", nodes.Div: "/", nodes.FloorDiv: "//"}
_UN = {nodes.Neg: "-", nodes.Pos: "+", nodes.Not: "not "}
_LITERALS = (str, int, bool, type(None))
_MISSING: Any = object()
_STOP = "value was undefined because a callable raised a StopIteration exception"


def accessors(env: SandboxedEnvironment) -> tuple[Callable[[Any, str], Any], Callable[[Any, Any], Any], Callable[..., Any]]:
    """`attr(o, name)`, `item(o, key)` and `call(f, *args)` with pyexpr's semantics, as plain functions."""
    getattr_, getitem, undefined = env.getattr, env.getitem, env.undefined

    def attr(o: Any, name: str) -> Any:
        if type(o) is dict:  # a plain dict key that is no dict attribute: what the sandbox gives
            v = o.get(name, _MISSING)
            return undefined(obj=o, name=name) if v is _MISSING else v
        return getattr_(o, name)

    def item(o: Any, key: Any) -> Any:
        if type(o) is dict and type(key) is str:
            v = o.get(key, _MISSING)
            if v is not _MISSING:
                return v
        return getitem(o, key)

    def call(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except StopIteration:
            return undefined(_STOP)

    return attr, item, call


class Memo:
    """Calls of pure helpers on the same arguments, repeated across the rules of one builder
    (`id_card_birthday(record.ID_CARD)` in three rules), worked out once per record: at most once,
    and only when a rule needing it gets there, so laziness and errors stay what they were.

    Written in two passes: the first counts each call (by its jinja node), the second caches the
    ones that occur more than once in a local of the builder."""

    def __init__(self, counts: Counter[str] | None = None) -> None:
        self.counting = counts is None
        self.counts: Counter[str] = Counter() if counts is None else counts
        self.names: dict[str, str] = {}
        """node -> the local holding its value (NOT_YET until worked out)."""
        self.shown: dict[str, str] = {}
        """local -> the call it holds, as the generated code spells it (for a comment)."""
        self._wrapped: dict[str, str] = {}

    def use(self, key: str, code: str) -> str:
        if self.counting:
            self.counts[key] += 1
            return code
        if self.counts[key] < 2:
            return code
        var = self.names.get(key)
        if var is None:
            var = self.names[key] = f"once{len(self.names) + 1}"
            shown = code
            for inner, wrapped in self._wrapped.items():
                shown = shown.replace(wrapped, inner)
            self.shown[var] = shown
            self._wrapped[var] = f"({var} if {var} is not NOT_YET else ({var} := {code}))"
        return self._wrapped[var]


class PySource:
    """Writes one expression. `names`: the context's names (record, item, index, request and the
    helpers) as the generated code spells them; `direct`: functions known never to raise
    StopIteration, called without the guard the template puts around every call; `pure`: those
    whose value depends on their arguments only (calls of them on stable arguments go through `memo`)."""

    def __init__(self, env: SandboxedEnvironment, base: Mapping[str, Any], names: Mapping[str, str], ref: Ref,
                 values: Mapping[str, Any], direct: frozenset[int], pure: frozenset[int] = frozenset(),
                 memo: Memo | None = None) -> None:
        self.env = env
        self.base = base
        self.names = names
        self.values = values
        """The fixed context values (the helpers), to see which function a call calls."""
        self.ref = ref
        self.direct = direct
        self.pure = pure
        self.memo = memo

    def expr(self, node: nodes.Node) -> str:
        visit = getattr(self, f"_{type(node).__name__.lower()}", None)
        if visit is None:
            raise Unsupported(type(node).__name__)
        return visit(node)  # type: ignore[no-any-return]

    def _fixed(self, node: nodes.Node) -> Any:
        """The value a name has on every call (a helper or a global), else _MISSING."""
        if not isinstance(node, nodes.Name) or node.ctx != "load" or node.name == "result":
            return _MISSING
        if node.name in self.names:
            return self.values.get(node.name, _MISSING)
        return self.base.get(node.name, _MISSING)

    # -- leaves ---------------------------------------------------------------------------
    def _const(self, node: nodes.Const) -> str:
        v = node.value
        return repr(v) if type(v) in _LITERALS else self.ref(v, "const")

    def _name(self, node: nodes.Name) -> str:
        name = node.name
        if node.ctx != "load" or name == "result":
            raise Unsupported(name)
        if name in self.names:
            return self.names[name]
        v = self.base.get(name, _MISSING)
        if v is _MISSING:
            return f"{self.ref(self.env.undefined, 'undefined')}(name={name!r})"
        return self.ref(v, name)

    def _list(self, node: nodes.List) -> str:
        return "[" + ", ".join(self.expr(i) for i in node.items) + "]"

    def _tuple(self, node: nodes.Tuple) -> str:
        items = [self.expr(i) for i in node.items]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def _dict(self, node: nodes.Dict) -> str:
        return "{" + ", ".join(f"{self.expr(p.key)}: {self.expr(p.value)}" for p in node.items) + "}"

    # -- access ---------------------------------------------------------------------------
    def _getattr(self, node: nodes.Getattr) -> str:
        obj = self.expr(node.node)
        if node.attr in _DICT_ATTRS:
            return f"{self.ref(self.env.getattr, 'env_getattr')}({obj}, {node.attr!r})"
        return f"ATTR({obj}, {node.attr!r})"

    def _getitem(self, node: nodes.Getitem) -> str:
        obj = self.expr(node.node)
        if isinstance(node.arg, nodes.Slice):  # the template slices directly, bypassing getitem
            s = node.arg
            start, stop, step = (self.expr(x) if x is not None else "None" for x in (s.start, s.stop, s.step))
            return f"{obj}[slice({start}, {stop}, {step})]"
        return f"ITEM({obj}, {self.expr(node.arg)})"

    # -- operators ------------------------------------------------------------------------
    def _and(self, node: nodes.And) -> str:
        return f"({self.expr(node.left)} and {self.expr(node.right)})"

    def _or(self, node: nodes.Or) -> str:
        return f"({self.expr(node.left)} or {self.expr(node.right)})"

    def _binop(self, node: nodes.BinExpr) -> str:
        return f"({self.expr(node.left)} {_BIN[type(node)]} {self.expr(node.right)})"

    _add = _sub = _mul = _div = _floordiv = _binop

    def _unop(self, node: nodes.UnaryExpr) -> str:
        return f"({_UN[type(node)]}{self.expr(node.node)})"

    _neg = _pos = _not = _unop

    def _concat(self, node: nodes.Concat) -> str:
        if self.env.autoescape:
            raise Unsupported("autoescape")
        return "''.join([" + ", ".join(f"str({self.expr(n)})" for n in node.nodes) + "])"

    def _compare(self, node: nodes.Compare) -> str:  # a chain evaluates as Python's `a < b < c`
        return "(" + " ".join([self.expr(node.expr), *(f"{_OPS[o.op]} {self.expr(o.expr)}" for o in node.ops)]) + ")"

    def _condexpr(self, node: nodes.CondExpr) -> str:
        if node.expr2 is None:  # the template's undefined carries a position message
            raise Unsupported("if without else")
        return f"({self.expr(node.expr1)} if {self.expr(node.test)} else {self.expr(node.expr2)})"

    # -- calls, filters, tests --------------------------------------------------------------
    def _args(self, node: nodes.Call | nodes.Filter | nodes.Test) -> list[str]:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("*args")
        keys = [k.key for k in node.kwargs]
        if len(set(keys)) != len(keys) or not all(k.isidentifier() and not keyword.iskeyword(k) for k in keys):
            raise Unsupported("keyword arguments Python cannot spell")
        return [self.expr(a) for a in node.args] + [f"{k.key}={self.expr(k.value)}" for k in node.kwargs]

    def _call(self, node: nodes.Call) -> str:
        f = self._fixed(node.node)
        if not (isinstance(f, types.FunctionType) and _plain(self.env, f)):  # the sandbox's own call path
            raise Unsupported("call")
        callee, args = self.expr(node.node), self._args(node)
        code = f"{callee}({', '.join(args)})" if id(f) in self.direct else f"CALL({', '.join([callee, *args])})"
        if self.memo is not None and id(f) in self.pure and self._stable(node):
            return self.memo.use(repr(node), code)
        return code

    def _stable(self, node: nodes.Node) -> bool:
        """Same value for the same record: names, constants, reads and pure calls of those."""
        if isinstance(node, (nodes.Const, nodes.Name)):
            return True
        if isinstance(node, nodes.Getattr):
            return self._stable(node.node)
        if isinstance(node, nodes.Getitem):
            return self._stable(node.node) and self._stable(node.arg)
        if isinstance(node, nodes.Slice):
            return all(x is None or self._stable(x) for x in (node.start, node.stop, node.step))
        if isinstance(node, nodes.Call):
            f = self._fixed(node.node)
            return (id(f) in self.pure and node.dyn_args is None and node.dyn_kwargs is None
                    and all(self._stable(a) for a in node.args) and all(self._stable(k.value) for k in node.kwargs))
        return False

    def _filter(self, node: nodes.Filter) -> str:
        if node.node is None:
            raise Unsupported("filter block")
        return self._applied(self.env.filters.get(node.name), node, "filter")

    def _test(self, node: nodes.Test) -> str:
        return self._applied(self.env.tests.get(node.name), node, "test")

    def _applied(self, func: Callable[..., Any] | None, node: nodes.Filter | nodes.Test, kind: str) -> str:
        if func is None:
            raise Unsupported(f"{kind} {node.name}")
        assert node.node is not None
        pass_arg = _PassArg.from_obj(func)
        first = [self.expr(node.node)]
        if pass_arg is _PassArg.environment:
            first.insert(0, self.ref(self.env, "env"))
        elif pass_arg is not None:  # wants the template context: the closure builds one
            raise Unsupported(f"{kind} {node.name} takes the context")
        return f"{self.ref(func, f'{kind}_{node.name}')}({', '.join(first + self._args(node))})"


__all__ = ["Memo", "PySource", "Unsupported", "accessors"]

"""Expressions compiled to Python closures give exactly what the sandboxed template gives.

Each expression runs both ways (Expressions.compile with fast=True and fast=False) against the same
contexts: same value and type, or the same error message. The sandbox's refusals must survive."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.translate import expr as expr_module
from engine.translate.expr import ExprError, Expressions, _as_date
from engine.translate.pyexpr import compile_expression

REPO = Path(__file__).resolve().parents[2]

RECORD: dict[str, Any] = {
    "a": 1, "b": "", "z": 0, "n": None, "s": "2024-05-11 08:00:00", "id": "11010519491231002X",
    "items": [1, 2], "d": {"x": "y", "k": None}, "l": [{"name": "n1"}, {"name": "n2", "code": "c"}],
    "BIRTH_DATE": "", "EXAM_TIME": "2024-05-11 08:00:00", "flag": True, "f": 2.5,
}
CONTEXTS: list[dict[str, Any]] = [
    {"record": RECORD, "item": RECORD["l"][1], "index": 1, "request": None, "outer": RECORD},
    {"record": [RECORD, {"a": 2}], "item": None, "index": 0, "request": {"patient": {"name": "王"}}},
    {"record": "text", "item": 3, "index": None, "request": None},
    {"record": {}, "item": {}, "index": 0, "request": None},
]

EXPRESSIONS = [
    # names, attributes, items, slices
    "{{ record }}", "{{ record.a }}", "{{ record.missing }}", "{{ nobody }}", "{{ record.items }}", "{{ record.keys }}",
    "{{ record['items'] }}", "{{ record['items'][0] }}", "{{ record['items'][5] }}", "{{ record['items'][-1] }}",
    "{{ record.s[:10] }}", "{{ record.s[5:7] }}", "{{ record.s[::2] }}", "{{ record.missing[:10] }}", "{{ record.n[:2] }}",
    "{{ record.d.x }}", "{{ record.d['x'] }}", "{{ record['d'].x }}", "{{ record.d.k }}", "{{ record.l[0].name }}",
    "{{ record[0].a }}", "{{ record[1] }}", "{{ record.missing.deeper }}", "{{ item.name }}", "{{ item.code }}",
    "{{ request.patient }}", "{{ request.patient.name }}", "{{ outer.a }}", "{{ index }}", "{{ record.d[1] }}",
    # boolean logic, conditions, comparisons
    "{{ record.a or 'x' }}", "{{ record.b or none }}", "{{ record.a and record.b }}", "{{ not record.a }}",
    "{{ not record.missing }}", "{{ 'y' if record.a else 'n' }}", "{{ 'y' if record.missing }}",
    "{{ record.a == 1 }}", "{{ record.a != 2 }}", "{{ 0 < record.a < 3 }}", "{{ 3 < record.a < 0 }}", "{{ 'x' in record.d }}",
    "{{ 'q' not in record.d }}", "{{ record.a >= 1 and record.f <= 2 }}", "{{ record.missing == none }}", "{{ record.s > 5 }}",
    "{{ record.abnormal if record.abnormal is not none else record.critical_level == '2' }}",
    "{{ 'H' if record.flag or record.level == '2' else 'M' }}",
    # operators and literals
    "{{ record.a ~ '-' ~ record.missing ~ '-' ~ record.n }}", "{{ record.a + 1 }}",
    "{{ record.a * 100 if record.a is not none else none }}",
    "{{ record.a / 0 }}", "{{ -record.a }}", "{{ +record.f }}", "{{ record.a // 2 }}", "{{ record.a - record.f }}", "{{ record.a % 2 }}",
    "{{ 2 ** 3 }}", "{{ record.s + 1 }}", "{{ [1, 2, record.a] }}", "{{ {'k': record.a, 'm': record.missing} }}", "{{ (1, record.a) }}",
    "{{ (record.missing or [{}])[0].name }}", "{{ true }}", "{{ none }}", "{{ 1.5 }}",
    # tests and filters
    "{{ record.n is none }}", "{{ record.missing is defined }}", "{{ record.missing is undefined }}", "{{ record.a is number }}",
    "{{ record.a is divisibleby 1 }}", "{{ record.l | map(attribute='name') | join(';') }}", "{{ (record.missing or []) | join(',') }}",
    "{{ record.clinical_diagnosis or (record.l or []) | map(attribute='name') | join(';') }}",
    "{{ record.s | clip(4) }}", "{{ record.l | length }}", "{{ record.missing | default('d') }}", "{{ record.s | upper }}",
    "{{ record.l | first }}", "{{ record.l | selectattr('code') | list }}", "{{ record.l | map('string') | list }}",
    "{{ record.s | reformat('yyyy-MM-dd HH:mm:ss', 'yyyyMMdd') }}", "{{ record.s | reformat('yyyyMMdd', 'yyyy') }}",
    "{{ record.l | sum(attribute='x') }}", "{{ record.a | nosuchfilter }}", "{{ record.a is nosuchtest }}",
    # helpers and calls
    "{{ id_card_birthday(record.id) }}", "{{ id_card_birthday(record.a) }}", "{{ first(record.missing, record.b, record.a) }}",
    "{{ age(first(record.BIRTH_DATE, id_card_birthday(record.id)), record.EXAM_TIME) }}", "{{ age('1990-01-01', '2024-01-01', 'mo') }}",
    "{{ code_label('x', 'y') }}", "{{ head(record.l).name }}", "{{ head(record).a }}", "{{ clip(record.s, 3) }}",
    "{{ map_code('m', record.a) }}", "{{ range(3) | list }}", "{{ dict(a=1, b=record.a) }}", "{{ record.s.split(' ') }}",
    "{{ record.s.upper() }}", "{{ record.d.get('x') }}", "{{ record.d.get('q', 'dflt') }}", "{{ '{}-{}'.format(record.a, record.b) }}",
    "{{ nobody(1) }}", "{{ record.a(1) }}", "{{ first() }}", "{{ age() }}",
    # the sandbox's refusals
    "{{ record.__class__ }}", "{{ ''.__class__.__mro__ }}", "{{ record.l.append(1) }}", "{{ record.d.pop('x') }}", "{{ record.d.pop }}",
    "{{ record.d.update }}", "{{ record.s.__len__() }}", "{{ '{0.__class__}'.format(record.a) }}",
]


def _outcome(fn: Any, ctx: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", fn(ctx)
    except ExprError as exc:
        return "error", str(exc)


@pytest.fixture(scope="module")
def exprs() -> Expressions:
    return Expressions(lambda table, code: f"{table}:{code}" if code == "y" else None)


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_closures_match_the_template(exprs: Expressions, source: str) -> None:
    helpers = {"map_code": lambda cid, code: None if code is None else f"{cid}={code}"}
    try:
        template = exprs.compile(source, fast=False)
    except Exception as exc:  # a syntax or compile error: the fast path must raise alike
        with pytest.raises(type(exc)):
            exprs.compile(source)
        return
    fast = exprs.compile(source)
    for ctx in CONTEXTS:
        ctx = {**ctx, **helpers}
        want, got = _outcome(template, ctx), _outcome(fast, ctx)
        assert got == want, (source, ctx["record"] if not isinstance(ctx["record"], dict) else "dict")
        assert type(got[1]) is type(want[1]), source
    if "__" in source or "pop" in source or "append" in source or "update" in source:
        assert _outcome(fast, {**CONTEXTS[0], **helpers})[0] == "error", f"the sandbox must refuse {source}"


def test_most_expressions_compile_to_closures(exprs: Expressions) -> None:
    base = dict(exprs.env.globals)
    compiled = [s for s in EXPRESSIONS if compile_expression(exprs.env, _set(s), base, lambda c: None) is not None]
    assert len(compiled) > 0.85 * len(EXPRESSIONS)
    assert compile_expression(exprs.env, _set("{{ record.a % 2 }}"), base, lambda c: None) is None


def _set(source: str) -> str:
    return "{%- set result = (" + source.strip()[2:-2].strip() + ") -%}"


def _rule_expressions(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "where") and isinstance(v, str)]
        return found + [e for k, v in node.items() if k not in ("expr", "where") for e in _rule_expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in _rule_expressions(v)]
    return []


def test_every_sample_mapping_expression_compiles_to_closures(exprs: Expressions) -> None:
    base = dict(exprs.env.globals)
    files = sorted((REPO / "specs" / "mappings").glob("*.yaml"))
    sources = [e for p in files for e in _rule_expressions(yaml.safe_load(p.read_text("utf-8")))]
    assert len(sources) > 50
    slow = [s for s in sources if compile_expression(exprs.env, _set(s), base, lambda c: None) is None]
    assert not slow, slow


def test_sample_chains_translate_alike_both_ways(real_specs, monkeypatch) -> None:
    """Every chain from a source to a platform, on its source's examples: the same message either way."""
    from engine.translate import load_mappings

    fast = load_mappings(REPO / "specs" / "mappings", real_specs)
    monkeypatch.setattr(expr_module, "compile_expression", lambda *_a, **_k: None)
    template = load_mappings(REPO / "specs" / "mappings", real_specs)
    checked = 0
    for target in sorted({t.target.key for t in fast if t.target.kind == "platform"}):
        for chain in fast.chains_to(target):
            if chain.source.kind != "source":
                continue
            for body in [e.body for e in real_specs.interface(chain.source.ref).spec.examples if e.valid]:
                try:
                    a = chain.translate(body)
                except Exception as exc:  # the template way must fail alike
                    with pytest.raises(type(exc)):
                        _same_chain(template, chain).translate(body)
                    continue
                assert _without_now(a) == _without_now(_same_chain(template, chain).translate(body)), (chain.id, body)
                checked += 1
    assert checked >= 5


def _same_chain(ms: Any, chain: Any) -> Any:
    from engine.translate.loader import Chain

    return Chain([ms.get(t.id) for t in chain.steps])


def _without_now(msg: Any) -> Any:
    """`now()` differs between two runs by the clock: drop values that look like today's timestamps."""
    today = dt.date.today()
    stamps = (today.isoformat(), today.strftime("%Y%m%d"))
    if isinstance(msg, dict):
        return {k: _without_now(v) for k, v in msg.items()}
    if isinstance(msg, list):
        return [_without_now(v) for v in msg]
    if isinstance(msg, str) and msg.startswith(stamps):
        return "<now>"
    return msg


def test_as_date_fast_path_matches_strptime() -> None:
    def slow(v: str) -> dt.date | None:
        s = v.strip()
        for fmt in ("%Y-%m-%d", "%Y%m%d"):
            try:
                return dt.datetime.strptime(s[: 10 if "-" in s else 8], fmt).date()
            except ValueError:
                continue
        return None

    rnd = random.Random(7)
    cases = ["2024-05-11", "2024-05-11 08:00:00", "20240511", "20240511083000", "2024-5-11", "2024-13-01", "2024-02-30",
             "20241305", "20240511-x", "2024-05-112", "0000-01-01", "20000229", "19000229", "١٩٩٠-02-28", "", "2024-05"]
    cases += ["".join(rnd.choice("0123456789-12 ") for _ in range(rnd.randint(0, 14))) for _ in range(20000)]
    cases += [f"{rnd.randint(1, 2999):04d}{'-' * rnd.randint(0, 1)}{rnd.randint(0, 13):02d}-{rnd.randint(0, 32):02d}" for _ in range(5000)]
    assert [c for c in cases if _as_date(c) != slow(c)] == []


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_python_source_matches_the_template(exprs: Expressions, source: str) -> None:
    """The same expressions written as Python source (pysource.py, what the generated builders run)."""
    helpers = {"map_code": lambda cid, code: None if code is None else f"{cid}={code}"}
    try:
        template = exprs.compile(source, fast=False)
    except Exception:  # a syntax error: nothing to write
        return
    node = exprs.node_of(exprs.compile(source))
    if node is None:
        return
    for ctx in CONTEXTS:
        ctx = {**ctx, **helpers}
        fn = _python_function(exprs, node, ctx)
        if fn is None:
            continue
        want, got = _outcome(template, ctx), _outcome(fn, ctx)
        assert got == want, (source, ctx["record"] if not isinstance(ctx["record"], dict) else "dict")
        assert type(got[1]) is type(want[1]), source


def test_most_expressions_become_python_source(exprs: Expressions) -> None:
    ctx = {**CONTEXTS[0], "map_code": lambda cid, code: code}
    written = [s for s in EXPRESSIONS if _compiles(exprs, s) and _python_function(exprs, exprs.node_of(exprs.compile(s)), ctx)]
    assert len(written) > 0.75 * len(EXPRESSIONS)


def _compiles(exprs: Expressions, source: str) -> bool:
    try:
        return exprs.node_of(exprs.compile(source)) is not None
    except Exception:
        return False


def _python_function(exprs: Expressions, node: Any, ctx: dict[str, Any]) -> Any:
    """`node` as the generated builders write it, in a function of the context dict; None outside the subset."""
    from jinja2 import Undefined

    from engine.translate.expr import _ERRORS, _value
    from engine.translate.pysource import PySource, Unsupported, accessors

    attr, item, call = accessors(exprs.env)
    ns: dict[str, Any] = {"ATTR": attr, "ITEM": item, "CALL": call, "UNDEFINED": Undefined, "VALUE": _value, "ERRORS": _ERRORS,
                          "ExprError": ExprError}

    def ref(obj: Any, hint: str) -> str:
        name = f"ref{len(ns)}"
        ns[name] = obj
        return name

    names = {k: f"c[{k!r}]" for k in ctx}
    values = {"map_code": ctx["map_code"]}
    try:
        code = PySource(exprs.env, exprs.env.globals, names, ref, values, exprs.direct, exprs.pure).expr(node)
    except Unsupported:
        return None
    exec(  # the code under test
        f"def fn(c):\n    try:\n        return VALUE({code})\n    except ERRORS as exc:\n"
        "        raise ExprError(f'{type(exc).__name__}: {exc}') from None\n", ns)
    return ns["fn"]

"""Load `specs/mappings/`: decode every mapping and code map, resolve both ends against the
loaded specs, compile, and (optionally) lint. Like the spec loader it gathers every finding
before deciding, so `specbridge check` shows all mapping problems in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import Finding, SpecError
from engine.spec.decode import SpecFile, decode_file
from engine.spec.loader import SpecSet
from engine.spec.model import CodeTable
from engine.translate.carry import encoder
from engine.translate.codes import compile_map
from engine.translate.compile import CodeLookup, Compiler
from engine.translate.errors import NoRoute
from engine.translate.expr import Expressions
from engine.translate.model import CodeMap, Mapping
from engine.translate.translator import Endpoint, Translator


@dataclass(eq=False)
class Chain:
    """Translators applied in turn (source -> canonical -> platform)."""

    steps: list[Translator]

    @property
    def id(self) -> str:
        return " -> ".join(t.id for t in self.steps)

    @property
    def source(self) -> Endpoint:
        return self.steps[0].source

    @property
    def target(self) -> Endpoint:
        return self.steps[-1].target

    def translate(self, record: Any) -> dict[str, Any]:
        for t in self.steps:
            record = t.translate(record)
        return record

    def trace(self, record: Any) -> list[tuple[Translator, dict[str, Any]]]:
        """Every intermediate message (for `specbridge map`)."""
        out = []
        for t in self.steps:
            record = t.translate(record)
            out.append((t, record))
        return out


@dataclass(eq=False)
class MappingSet:
    root: Path
    translators: dict[str, Translator] = field(default_factory=dict)
    mappings: dict[str, tuple[Mapping, SpecFile]] = field(default_factory=dict)
    code_maps: dict[str, tuple[CodeMap, SpecFile]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    _routes: dict[tuple[str, str], Chain] = field(default_factory=dict, repr=False)
    """Chains found by `route`: mappings never change once loaded, and a bridge asks per record."""

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def __iter__(self) -> Iterator[Translator]:
        return iter(self.translators.values())

    def get(self, mapping_id: str) -> Translator:
        t = self.translators.get(mapping_id)
        if t is None:
            raise NoRoute(f"unknown mapping `{mapping_id}` (known: {', '.join(sorted(self.translators)) or 'none'})")
        return t

    def chains_to(self, target_ref: str, max_len: int = 3) -> list[Chain]:
        """Every chain of mappings ending at `target_ref`, shortest first."""
        found: list[Chain] = []
        frontier = [[t] for t in self.translators.values() if t.target.key == target_ref]
        while frontier:
            found.extend(Chain(list(c)) for c in frontier)
            nxt = []
            for c in frontier:
                if len(c) >= max_len:
                    continue
                for t in self.translators.values():
                    if t.target.key == c[0].source.key and t not in c and not _answer_into_request(t, c[-1]):
                        nxt.append([t, *c])
            frontier = nxt
        return found

    def route(self, source_ref: str, target_ref: str) -> Chain:
        """The shortest chain from `source_ref` to `target_ref`."""
        got = self._routes.get((source_ref, target_ref))
        if got is not None:
            return got
        for c in self.chains_to(target_ref):
            if c.source.key == source_ref:
                self._routes[(source_ref, target_ref)] = c
                return c
        raise NoRoute(f"no mapping chain from {source_ref} to {target_ref}")


def _answer_into_request(first: Translator, last: Translator) -> bool:
    """A chain keeps one direction: an answer flows back to its asker, a request on to a platform.
    Both meet at canonical models, so without this rule `xinjiang answer -> canonical -> xinjiang
    query` or `HIS query -> canonical -> HIS answer` would count as chains."""
    if first.source.kind == "model" or last.target.kind == "model":
        return False
    return (first.source.part == "response") != (last.target.part == "response")


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def resolve_endpoint(specset: SpecSet, ref: str, part: str = "request") -> tuple[Endpoint | None, str | None]:
    """Parse and resolve a mapping end; (None, reason) when it names nothing loaded."""
    ref = ref.strip()
    if ref.startswith("canonical/"):
        mid = ref.removeprefix("canonical/")
        model = specset.models.get(mid)
        if model is None:
            return None, f"unknown canonical model `{mid}` (known: {', '.join(sorted(specset.models))})"
        return Endpoint(ref, "model", "request", model.body), None
    kind = "platform"
    qualified = ref
    if ref.startswith("sources/"):
        kind, qualified = "source", ref.removeprefix("sources/")
    pid, _, iid = qualified.partition("/")
    plat = specset.platforms.get(pid)
    if plat is None or not iid:
        what = "source" if kind == "source" else "platform"
        return None, f"unknown {what} `{pid}` in `{ref}` (expected canonical/<model>, sources/<id>/<interface> or <platform>/<interface>)"
    if kind == "platform" and plat.kind == "sources":
        kind = "source"
    iface = plat.interfaces.get(iid)
    if iface is None:
        return None, f"unknown interface `{qualified}` (known: {', '.join(sorted(plat.interfaces))})"
    body = iface.response if part == "response" else iface.request
    if body is None:
        return None, f"`{qualified}` has no {part} body"
    return Endpoint(qualified, kind, part, body), None


def _label_lookup(specset: SpecSet, platforms: list[str]) -> Callable[[str, Any], str | None]:
    """`code_label(table, code)`: the label of a code, from these platforms' tables, then the common ones."""
    cache: dict[str, dict[str, str]] = {}

    def table(tid: str) -> dict[str, str]:
        got = cache.get(tid)
        if got is None:
            ct: CodeTable | None = None
            for pid in platforms:
                plat = specset.platforms.get(pid)
                if plat is not None and tid in plat.codes:
                    ct = plat.codes[tid][0]
                    break
            if ct is None and tid in specset.common_codes:
                ct = specset.common_codes[tid][0]
            got = cache[tid] = {k: (v if isinstance(v, str) else v.label) for k, v in (ct.values.items() if ct else ())}
        return got

    def code_label(tid: str, code: Any) -> str | None:
        if code is None or code == "":
            return None
        return table(tid).get(str(code))

    return code_label


def _supplied(target: Endpoint, spec: Mapping, specset: SpecSet) -> tuple[str, ...]:
    names = list(spec.supplied or [])
    if target.kind != "model":
        pid = target.ref.partition("/")[0]
        plat = specset.platforms.get(pid)
        auth = plat.platform.auth if plat else None
        if auth and auth.carry and auth.carry.in_ == "body" and auth.carry.name not in names:
            names.append(auth.carry.name)
    return tuple(names)


def load_mappings(
    root: str | Path, specset: SpecSet, *, strict: bool = True, lint: bool = True, generate: bool = True
) -> MappingSet:
    """Load and compile `root` (specs/mappings). With strict, any error finding raises SpecError.

    `generate=False` keeps every mapping as the compiler's closures (the reference semantics the
    generated builders are tested against) instead of one generated function per fields block."""
    root = Path(root)
    base = specset.root.parent if specset.root.name == "specs" else specset.root
    ms = MappingSet(root)
    exprs = Expressions(lambda _t, _c: None)
    lookups: dict[str, CodeLookup] = {}
    for kind_dir, tp, store in ((root / "codes", CodeMap, ms.code_maps), (root, Mapping, ms.mappings)):
        if not kind_dir.is_dir():
            continue
        for p in sorted(kind_dir.iterdir()):
            if p.is_dir() or p.suffix not in (".yaml", ".yml"):
                continue
            spec, sf, findings = decode_file(p, _rel(p, base), tp)
            ms.findings.extend(findings)
            if spec is None or sf is None:
                continue
            sid = spec.id or p.stem
            if spec.id and spec.id != p.stem:
                ms.findings.append(sf.finding(("id",), f"id `{spec.id}` differs from its file name `{p.stem}`"))
            store[sid] = (spec, sf)  # type: ignore[index]
    for cid, (cm, _sf) in ms.code_maps.items():
        lookups[cid] = compile_map(cid, cm)
    for mid, (m, sf) in ms.mappings.items():
        t = _compile_one(mid, m, sf, specset, exprs, lookups, ms.findings, generate)
        if t is not None:
            ms.translators[mid] = t
    if lint:
        from engine.translate.lint import lint_mappings

        ms.findings.extend(lint_mappings(specset, ms))
    if strict and ms.errors:
        raise SpecError(ms.errors)
    return ms


def _compile_one(
    mid: str, m: Mapping, sf: SpecFile, specset: SpecSet, exprs: Expressions, lookups: dict[str, CodeLookup], findings: list[Finding],
    generate: bool = True,
) -> Translator | None:
    src, why_src = resolve_endpoint(specset, m.from_, m.part)
    dst, why_dst = resolve_endpoint(specset, m.to, m.to_part)
    if src is None:
        findings.append(sf.finding(("from",), f"from: {why_src}"))
    if dst is None:
        findings.append(sf.finding(("to",), f"to: {why_dst}"))
    if m.part == "response" and src is not None and src.kind == "model":
        findings.append(sf.finding(("part",), "part: response applies to a platform interface `from`, not a canonical model"))
    if m.to_part == "response" and dst is not None and dst.kind == "model":
        findings.append(sf.finding(("to_part",), "to_part: response applies to an interface `to`, not a canonical model"))
    if src is None or dst is None:
        return None
    platforms = [e.ref.partition("/")[0] for e in (dst, src) if e.kind != "model"]
    label = _label_lookup(specset, platforms)

    def report(path: tuple[Any, ...], message: str) -> None:
        findings.append(sf.finding(path, message))

    assert src.body is not None and dst.body is not None
    comp = Compiler(mid, exprs, lookups, report, label, m.absent, src.body.node, generate=generate)
    build = comp.fields(m.fields, dst.body.node, src.body.node, ("fields",))
    code = "\n".join(comp.generator.sources) if comp.generator is not None else ""
    return Translator(mid, sf.rel, m, src, dst, build, encoder(dst.body.node), _supplied(dst, m, specset), code)

"""Lint mappings against the specs they connect, every finding at its file and line.

Checks: a target path that is not a field of the target spec; a source path that is not in the
source spec or model; a required target field no rule fills (spec defaults and envelope-supplied
fields excepted); an unknown code map; a code-map value outside the target field's code table.
Expressions are compiled at load (syntax errors come from there) but not path-checked.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.errors import Finding
from engine.spec.decode import SpecFile
from engine.spec.loader import SpecSet
from engine.spec.nodes import Node
from engine.translate.model import CodeMap, Rule, RuleSpec
from engine.translate.nodes import ANY, item_of, walk
from engine.translate.paths import PathError, parse, target_parts
from engine.translate.translator import Endpoint


def lint_mappings(specset: SpecSet, mappings: Any = None) -> list[Finding]:
    """Findings for every mapping. With `mappings` None, loads `<specs>/mappings` first and returns
    its load findings too: the one call `specbridge check` needs."""
    if mappings is None:
        from engine.translate.loader import load_mappings

        root = specset.root / "mappings"
        if not root.is_dir():
            return []
        return load_mappings(root, specset, strict=False, lint=True).findings
    out: list[Finding] = []
    checked_codes: set[tuple[str, str]] = set()
    for mid, (m, sf) in mappings.mappings.items():
        t = mappings.translators.get(mid)
        if t is None:
            continue  # its ends did not resolve: already reported at load
        _Lint(sf, t.source, t.target, mappings.code_maps, out, checked_codes, set(t.supplied)).fields(
            m.fields, t.target.body.node, t.source.body.node, ("fields",), "", top=True
        )
    return out


class _Lint:
    def __init__(
        self,
        sf: SpecFile,
        source: Endpoint,
        target: Endpoint,
        code_maps: dict[str, tuple[CodeMap, SpecFile]],
        out: list[Finding],
        checked_codes: set[tuple[str, str]],
        supplied: set[str],
    ) -> None:
        self.sf = sf
        self.source = source
        self.target = target
        self.code_maps = code_maps
        self.out = out
        self.checked_codes = checked_codes
        self.supplied = supplied
        self.root_snode = source.body.node if source.body else None

    def add(self, path: tuple[Any, ...], message: str, severity: str = "error") -> None:
        self.out.append(self.sf.finding(path, message, severity))

    def fields(
        self, fields: dict[str, RuleSpec], tnode: Node | None, snode: Node | None, ypath: tuple[Any, ...], tprefix: str, top: bool = False
    ) -> None:
        mapped: list[tuple[str, ...]] = []
        for tpath, rule in fields.items():
            try:
                parts = target_parts(tpath)
            except PathError:
                continue  # reported at load
            mapped.append(parts)
            tchild, n = walk(tnode, parts)
            if tchild is None:
                self.add((*ypath, tpath), f"target `{_j(tprefix, '.'.join(parts[: n + 1]))}` is not a field of {self.target.ref}")
                tchild = ANY
            self.rule(rule, tchild, snode, (*ypath, tpath), _j(tprefix, tpath))
        self.required(tnode, mapped, ypath, tprefix, top)

    def required(self, tnode: Node | None, mapped: list[tuple[str, ...]], ypath: tuple[Any, ...], tprefix: str, top: bool) -> None:
        if tnode is None or tnode is ANY or tnode.children is None:
            return
        for name, child in tnode.children.items():
            if not child.required or (child.spec is not None and child.spec.default is not None):
                continue
            if top and name in self.supplied:
                continue
            under = [p[1:] for p in mapped if p[0] == name]
            if not under:
                self.add(ypath, f"required target field `{_j(tprefix, name)}` of {self.target.ref} is not mapped")
            elif () not in under and child.children is not None and not child.is_list:
                self.required(child, under, ypath, _j(tprefix, name), False)

    def source_path(self, path: str, snode: Node | None, ypath: tuple[Any, ...]) -> Node | None:
        try:
            from_root, tokens = parse(path)
        except PathError:
            return None  # reported at load
        base = self.root_snode if from_root else snode
        if base is None:
            return ANY
        got, n = walk(base, tokens)
        if got is None:
            shown = ("$." if from_root else "") + _tokens_text(tokens[: n + 1])
            side = " response" if self.source.part == "response" else ""
            self.add(ypath, f"source path `{path}` is not in {self.source.ref}{side} (no `{shown}`)")
        return got

    def rule(self, spec: RuleSpec, tnode: Node, snode: Node | None, ypath: tuple[Any, ...], tname: str) -> None:
        if isinstance(spec, str):
            self.source_path(spec, snode, ypath)
            return
        if isinstance(spec, list):
            for i, p in enumerate(spec):
                self.source_path(p, snode, (*ypath, i))
            return
        rule: Rule = spec
        if rule.each is not None:
            if tnode is not ANY and not tnode.is_list:
                self.add((*ypath, "each"), f"`each` builds a list but target `{tname}` is a {tnode.kind}")
            item_t = item_of(tnode) if tnode is not ANY and tnode.is_list else tnode
            for path in [rule.each] if isinstance(rule.each, str) else rule.each:  # the fields must fit every list's items
                lnode = self.source_path(path, snode, (*ypath, "each"))
                item_s = lnode if lnode is None or lnode is ANY else (item_of(lnode) if lnode.is_list else lnode)
                if rule.fields:
                    self.fields(rule.fields, item_t, item_s, (*ypath, "fields"), tname + "[]")
            return
        if rule.fields is not None:
            sub = snode
            if isinstance(rule.from_, str):
                sub = self.source_path(rule.from_, snode, (*ypath, "from"))
            if tnode is not ANY and tnode.children is None:
                self.add(ypath, f"`fields` builds an object but target `{tname}` is a {tnode.kind}")
            self.fields(rule.fields, tnode, sub, (*ypath, "fields"), tname)
            return
        for p in [rule.from_] if isinstance(rule.from_, str) else (rule.from_ or []):
            self.source_path(p, snode, (*ypath, "from"))
        if rule.codes is not None:
            got = self.code_maps.get(rule.codes)
            if got is None:
                known = ", ".join(sorted(self.code_maps)) or "none"
                self.add((*ypath, "codes"), f"unknown code map `{rule.codes}` (no specs/mappings/codes/{rule.codes}.yaml; known: {known})")
            elif tnode is not ANY and tnode.codes is not None and tnode.codes_id:
                self.code_values(rule.codes, got, tnode)

    def code_values(self, cid: str, got: tuple[CodeMap, SpecFile], tnode: Node) -> None:
        """Every standard code a map can produce must be in the target field's code table."""
        assert tnode.codes is not None and tnode.codes_id is not None
        if (cid, tnode.codes_id) in self.checked_codes:
            return
        self.checked_codes.add((cid, tnode.codes_id))
        cm, csf = got
        sev = "error" if tnode.codes_strict else "warn"
        table = f"code table `{tnode.codes_id}` of the target field"
        for local, std in cm.map.items():
            if std is not None and _code(std) not in tnode.codes:
                self.out.append(csf.finding(("map", local), f"`{local}` maps to {std!r}, which is not in {table}", sev))
        if cm.default is not msgspec.UNSET and cm.default is not None and _code(cm.default) not in tnode.codes:
            self.out.append(csf.finding(("default",), f"default {cm.default!r} is not in {table}", sev))


def _code(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def _j(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _tokens_text(tokens: tuple[str | int, ...]) -> str:
    s = ""
    for t in tokens:
        s += f"[{t}]" if isinstance(t, int) else (f".{t}" if s else t)
    return s

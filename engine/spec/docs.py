"""Markdown docs generated from compiled specs: one page per interface, an index per platform.

Generated from the same Nodes the validators use, so the docs cannot drift from behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.plugins.docs import anchor, extensions_page
from engine.plugins.registry import Extension, current
from engine.plugins.seams import KIND_TITLES
from engine.spec.compiled import CompiledBody, CompiledInterface
from engine.spec.loader import PlatformSpec, SpecSet
from engine.spec.nodes import Node


def _cell(text: Any) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def _rules(node: Node) -> str:
    parts: list[str] = []
    if node.codes_id:
        parts.append(f"codes: [{node.codes_id}](codes.md#{node.codes_id.lower()})")
    if node.pattern is not None:
        parts.append(f"pattern `{node.pattern.pattern}`")
    if node.required_if is not None:
        c = node.required_if
        parts.append(
            f"required if {c.field} {('= ' + repr(c.equals)) if c.equals is not None else ''}{' in ' + str(c.in_) if c.in_ else ''}"
        )
    if node.forbidden_if is not None:
        parts.append(f"forbidden if {node.forbidden_if.field}")
    if node.one_of:
        parts.append("one of " + " / ".join("(" + ", ".join(g) + ")" for g in node.one_of))
    if node.carried_as:
        parts.append(f"carried as a {node.carried_as.upper()} string" + (f" <{node.root}>" if node.root else ""))
    if node.encrypted:
        parts.append("encrypted on the wire")
    if node.custom is not None:
        schema = json.dumps(node.custom.json_schema(), ensure_ascii=False)
        link = f"extensions.md#{anchor('field_type', node.custom.name)}"
        parts.append(f"[{node.custom.name}]({link}) (plugin `{node.custom.ext.plugin}`): `{schema}`")
    for name, _ in node.checks:
        parts.append(f"check {name}")
    if node.max_bytes:
        parts.append(f"≤ {node.max_bytes} bytes")
    if node.aliases:
        parts.append("aliases " + ", ".join(node.aliases))
    if node.warn:
        parts.append("warn only")
    return "; ".join(parts)


def _rows(node: Node, prefix: str, out: list[str]) -> None:
    for name, child in (node.children or {}).items():
        path = f"{prefix}{name}"
        f = child.spec
        note = " ".join(x for x in (f.description, f.note) if x)
        out.append(
            f"| `{_cell(path)}` | {_cell(f.title)} | {_cell(child.type_text())} | {_cell(child.length_text())} "
            f"| {child.card_text()} | {_cell(_rules(child))} | {_cell(note)} |"
        )
        if child.children is not None:
            _rows(child, f"{path}[]." if child.is_list else f"{path}.", out)


def _body(title: str, body: CompiledBody | None, out: list[str]) -> None:
    if body is None:
        return
    b = body.body
    extra = f", root `<{b.root}>`" if b.root else ""
    out += [f"## {title}", "", f"Format: {b.format}{extra}." + (f" {b.note}" if b.note else ""), ""]
    if body.node.one_of:
        out += ["One of: " + " / ".join("(" + ", ".join(g) + ")" for g in body.node.one_of), ""]
    out += ["| field | 名称 | type | length | card | rules | notes |", "|---|---|---|---|---|---|---|"]
    _rows(body.node, "", out)
    out.append("")


def interface_page(iface: CompiledInterface) -> str:
    s = iface.spec
    out = [f"# {iface.qualified_id} — {s.title}", ""]
    if s.description:
        out += [s.description, ""]
    if s.source:
        out += [f"Source: {s.source}", ""]
    b = s.binding
    if b is not None:
        out += ["## Binding", ""]
        if b.http:
            out.append(f"- HTTP {b.http.method} `{b.http.path}`" + (f" ({b.http.content_type})" if b.http.content_type else ""))
        if b.soap:
            out.append(f"- SOAP operation `{b.soap.operation}`" + (f", selected by {b.soap.select}" if b.soap.select else ""))
        if b.view:
            out.append(f"- database view `{b.view.name}`" + (f", key {b.view.key}" if b.view.key else ""))
        if b.procedure:
            out.append(f"- stored procedure `{b.procedure.name}`")
        if b.dicom:
            out.append(f"- DICOM {b.dicom.service}")
        out.append("")
    if s.key:
        out += [f"Natural key (idempotency): {', '.join(f'`{k}`' for k in s.key)}", ""]
    if s.note:
        out += ["> **Note.** " + s.note.replace("\n", "\n> "), ""]
    _body("Request headers", iface.headers, out)
    _body("Request", iface.request, out)
    _body("Response", iface.response, out)
    if s.errors:
        out += ["## Interface error codes", "", "| code | message | action |", "|---|---|---|"]
        out += [f"| {k} | {_cell(v.message)} | {v.action} |" for k, v in s.errors.items()]
        out.append("")
    if s.reconcile is not None:
        rc = s.reconcile
        pairs = ", ".join(f"`{a}` = sent `{b}`" for a, b in rc.match.items())
        where = f"an item of `{rc.records}`" if rc.records else "the answer"
        out += ["## Reconciliation", "",
                f"A delivery in doubt (the bridge died mid-send) is looked up with [{rc.query}]({rc.query}.md) before it is"
                f" sent again: the query is built from the sent request by mapping `{rc.mapping}`; the delivery is there when"
                f" {where} has {pairs}. Found: not sent again; not found: sent.", ""]
        if rc.note:
            out += ["> " + rc.note.replace("\n", "\n> "), ""]
    return "\n".join(out)


def platform_index(ps: PlatformSpec) -> str:
    p = ps.platform
    out = [f"# {p.id} — {p.title}", ""]
    if p.document:
        out += [f"Document: `{p.document}`" + (f", version {p.version}" if p.version else ""), ""]
    if p.description:
        out += [p.description, ""]
    out += [f"Transport: {p.transport.kind}" + (f", base path `{p.transport.base_path}`" if p.transport.base_path else ""), ""]
    if p.auth:
        a = p.auth
        facts = [
            f"{k} {v}"
            for k, v in (
                ("via", a.interface),
                ("lifetime", f"{a.lifetime_s} s" if a.lifetime_s else None),
                ("daily cap", a.daily_cap),
                ("lock-out after", a.lockout.failures if a.lockout else None),
            )
            if v
        ]
        out += [f"Auth: {a.kind}" + (" (" + ", ".join(facts) + ")" if facts else "") + (f". {a.note}" if a.note else ""), ""]
    if p.note:
        out += ["> **Note.** " + p.note.replace("\n", "\n> "), ""]
    out += ["## Interfaces", "", "| interface | 名称 | binding |", "|---|---|---|"]
    for iid, iface in sorted(ps.interfaces.items()):
        b = iface.spec.binding
        bind = ""
        if b is not None:
            bind = (b.http and f"HTTP {b.http.path}") or (b.soap and f"SOAP {b.soap.operation}") or (b.view and f"view {b.view.name}") or ""
        out.append(f"| [{iid}]({iid}.md) | {_cell(iface.spec.title)} | {_cell(bind)} |")
    out.append("")
    if p.errors:
        out += ["## Error codes", "", "| code | message | action |", "|---|---|---|"]
        out += [f"| {k} | {_cell(v.message)} | {v.action} |" for k, v in p.errors.items()]
        out.append("")
    out += ["Code tables: [codes.md](codes.md)", ""]
    exts = plugin_extensions(ps)
    if exts:
        out += ["## Extensions", "", "Plugin extensions these specs use (settings and details: [extensions.md](extensions.md)):", "",
                "| extension | kind | plugin |", "|---|---|---|"]
        out += [f"| [{e.name}](extensions.md#{anchor(e.kind, e.name)}) | {KIND_TITLES[e.kind]} | {e.plugin} |" for e in exts]
        out.append("")
    return "\n".join(out)


def plugin_extensions(ps: PlatformSpec) -> list[Extension]:
    """The plugin (non-built-in) extensions a platform's specs use, in registry order."""
    reg = current()
    return [e for e in reg.extensions() if (e.kind, e.name) in ps.extensions and not e.builtin]


def codes_page(ps: PlatformSpec) -> str:
    out = [f"# {ps.id} code tables", ""]
    for cid, (table, _) in sorted(ps.codes.items()):
        out += [f"## {cid}", "", f"{table.title}" + (f" — {table.source}" if table.source else ""), ""]
        if table.note:
            out += [table.note, ""]
        out += ["| code | label |", "|---|---|"]
        for code, v in table.values.items():
            out.append(f"| `{_cell(code)}` | {_cell(v if isinstance(v, str) else v.label)} |")
        out.append("")
    return "\n".join(out)


def write_docs(specset: SpecSet, platform_ids: list[str], out: Path) -> list[Path]:
    written: list[Path] = []
    for pid in platform_ids:
        ps = specset.platforms[pid]
        d = out / pid
        d.mkdir(parents=True, exist_ok=True)
        pages = {"index.md": platform_index(ps), "codes.md": codes_page(ps)}
        if exts := plugin_extensions(ps):
            pages["extensions.md"] = extensions_page(f"{pid} extensions", exts, current())
        pages.update({f"{iid}.md": interface_page(i) for iid, i in ps.interfaces.items()})
        for name, text in pages.items():
            (d / name).write_text(text, encoding="utf-8")
            written.append(d / name)
    top = ["# Platforms", ""] + [
        f"- [{pid}]({pid}/index.md) — {specset.platforms[pid].platform.title}" for pid in sorted(specset.platforms)
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text("\n".join(top) + "\n", encoding="utf-8")
    written.append(out / "README.md")
    return written

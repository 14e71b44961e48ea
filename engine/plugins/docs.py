"""Markdown for extensions: name, kind, plugin and version, what implements it, its docstring and a
settings table generated from its settings Struct (so the docs cannot drift from what `check` accepts)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

import msgspec

from engine.plugins.registry import Extension, Registry
from engine.plugins.seams import KIND_TITLES


def _cell(text: Any) -> str:
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")


def attribute_docs(struct: type) -> dict[str, str]:
    """Field docstrings (the string right after `name: type = default`), read from the class source."""
    out: dict[str, str] = {}
    for cls in reversed(struct.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)) or cls is msgspec.Struct:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, [*body[1:], None], strict=True):
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr) \
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                out[stmt.target.id] = " ".join(nxt.value.value.split())
    return out


def _type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rpartition("/")[2]
    if "enum" in prop:
        return ", ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_text(p, defs) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_type_text(prop.get('items', {}), defs)}"
    if prop.get("type") == "object":
        return "mapping"
    return str(prop.get("type", "any"))


def settings_rows(struct: type[msgspec.Struct]) -> list[tuple[str, str, str, str]]:
    """(setting, type, default, description) for each field of a settings Struct."""
    schema = msgspec.json.schema(struct)
    defs = schema.get("$defs", {})
    own = defs.get(struct.__name__, schema)
    props: dict[str, Any] = own.get("properties", {})
    required = set(own.get("required", []))
    docs = attribute_docs(struct)
    rows = []
    for f in msgspec.structs.fields(struct):
        prop = props.get(f.encode_name, {})
        if f.default_factory is not msgspec.NODEFAULT:
            default = f"`{msgspec.json.encode(f.default_factory()).decode()}`"
        elif f.default is not msgspec.NODEFAULT:
            default = f"`{msgspec.json.encode(f.default).decode()}`"
        else:
            default = "required" if f.encode_name in required else ""
        desc = docs.get(f.name) or prop.get("description") or ""
        rows.append((f.encode_name, _type_text(prop, defs), default, desc))
    return rows


def anchor(kind: str, name: str) -> str:
    """The id of an extension's section: kinds may share a name."""
    return f"{kind}-{name}".lower()


def extension_section(ext: Extension, reg: Registry, level: str = "##") -> list[str]:
    info = reg.plugin(ext.plugin)
    dist = f"{info.dist} {info.version}" if info is not None and info.dist else "no distribution"
    sensitive = " Values are personal data: findings never echo them." if ext.sensitive else ""
    out = [f'<a id="{anchor(ext.kind, ext.name)}"></a>', "", f"{level} `{ext.name}` — {KIND_TITLES[ext.kind]}", "",
           f"Plugin `{ext.plugin}` ({dist}); implemented by `{ext.origin}`.{sensitive}", ""]
    if ext.doc:
        out += [ext.doc, ""]
    rows = settings_rows(ext.settings)
    if rows:
        out += [f"Settings (`{ext.settings.__name__}`, unknown keys rejected):", "",
                "| setting | type | default | description |", "|---|---|---|---|"]
        out += [f"| `{n}` | {_cell(t)} | {_cell(d)} | {_cell(desc)} |" for n, t, d, desc in rows]
    else:
        out.append("Settings: none.")
    out.append("")
    return out


def extensions_page(title: str, exts: list[Extension], reg: Registry) -> str:
    out = [f"# {title}", ""]
    for ext in exts:
        out += extension_section(ext, reg)
    return "\n".join(out)

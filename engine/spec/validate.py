"""The complete validator: walks a decoded message along its Node tree and reports every finding.

This is the source of truth for what is valid. The msgspec fast path (fast.py) only ever
answers "valid" for messages this walker also accepts; whenever it has doubts, this runs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from engine.errors import MessageError
from engine.plugins.errors import ExtensionError
from engine.spec.model import Condition
from engine.spec.nodes import Node, decimal_digits
from engine.spec.xmlsafe import parse_xml, xml_to_obj

MISSING: Any = msgspec.UNSET  # a sentinel distinct from None (JSON null)
_MAX_ACTUAL = 80


class Issue(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One finding about a message. Shape is the stable `validate --json` contract."""

    path: str
    rule: str
    message: str
    expected: Any = None
    actual: Any = None
    severity: str = "error"


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return key if path in ("", "$") else f"{path}.{key}"


def _short(v: Any) -> Any:
    if isinstance(v, str) and len(v) > _MAX_ACTUAL:
        return v[:_MAX_ACTUAL] + "…"
    if isinstance(v, (dict, list)):
        return type(v).__name__
    return v


def _sensitive(node: Node) -> bool:
    return node.encrypted or node.sensitive


def _present(v: Any) -> bool:
    return v is not MISSING and v is not None and v != ""


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "integer", float: "number", str: "string", dict: "object", list: "list"}.get(type(v), type(v).__name__)


def holds(cond: Condition, siblings: Mapping[str, Any], root: Any = None) -> bool:
    """Whether a spec Condition holds: `field` is a sibling, or `$.a.b` from the message root.
    Values compare as text, since codes are strings in specs and often numbers on the wire."""
    if cond.field.startswith("$"):
        cur: Any = root
        for part in cond.field.lstrip("$").strip(".").split("."):
            cur = cur.get(part, MISSING) if isinstance(cur, dict) else MISSING
        value = cur
    else:
        value = siblings.get(cond.field, MISSING)
    if cond.present is not None:
        return _present(value) == cond.present
    if cond.absent is not None:
        return (not _present(value)) == cond.absent
    sv = None if value is MISSING or value is None else str(value)
    if cond.in_ is not None:
        return sv in {str(x) for x in cond.in_}
    if cond.not_in is not None:
        return sv is not None and sv not in {str(x) for x in cond.not_in}
    return sv is not None and sv == str(cond.equals)


class Walker:
    """Collects findings for one message. `lenient` accepts scalars written as strings (XML, forms, headers)."""

    def __init__(self, lenient: bool = False, plaintext: bool = False) -> None:
        self.lenient = lenient
        self.plaintext = plaintext
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.root: Any = None

    def add(self, node: Node | None, path: str, rule: str, message: str, expected: Any = None, actual: Any = None) -> None:
        if node is not None and _sensitive(node):
            actual = "***"
        issue = Issue(path=path or "$", rule=rule, message=message, expected=expected, actual=_short(actual))
        if (node is not None and node.warn) or (rule == "code" and node is not None and not node.codes_strict):
            issue.severity = "warn"
            self.warnings.append(issue)
        else:
            self.errors.append(issue)

    # -- entry points -------------------------------------------------------------------
    def run(self, node: Node, value: Any, path: str = "") -> None:
        self.root = value
        if node.is_list:
            self.list_(node, value, path)
        else:
            self.object(node, value, path)

    # -- structure ----------------------------------------------------------------------
    def _cond(self, cond: Condition, siblings: Mapping[str, Any]) -> bool:
        return holds(cond, siblings, self.root)

    def _cond_text(self, cond: Condition) -> str:
        if cond.present:
            return f"{cond.field} is present"
        if cond.absent:
            return f"{cond.field} is absent"
        if cond.in_ is not None:
            return f"{cond.field} in {cond.in_}"
        if cond.not_in is not None:
            return f"{cond.field} not in {cond.not_in}"
        return f"{cond.field} = {cond.equals!r}"

    def object(self, node: Node, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.add(node, path, "type", f"{path or 'body'}: expected an object, got {_type_name(value)}", "object", _type_name(value))
            return
        children = node.children or {}
        seen: set[str] = set()
        resolved: dict[str, Any] = {}
        for name, child in children.items():
            v = value.get(name, MISSING)
            if v is MISSING:
                for alias in child.aliases:
                    if alias in value:
                        v = value[alias]
                        seen.add(alias)
                        self.warnings.append(
                            Issue(
                                path=join(path, alias), rule="alias", severity="warn", message=f"`{alias}` accepted as an alias of `{name}`"
                            )
                        )
                        break
            resolved[name] = v
        for name, child in children.items():
            v = resolved[name]
            p = join(path, name)
            if v is MISSING or v is None or (v == "" and not child.is_list and child.kind not in ("object",)):
                if child.required and not (v == "" and child.allow_empty):
                    if v is None:
                        self.add(child, p, "required", f"{p} is required and may not be null", "a value", None)
                    elif v == "":
                        self.add(child, p, "empty", f"{p} is required and may not be empty", "a non-empty value", "")
                    else:
                        self.add(child, p, "required", f"{p} is required", "present")
                elif child.required_if is not None and self._cond(child.required_if, resolved) and not (v == "" and child.allow_empty):
                    self.add(child, p, "required_if", f"{p} is required when {self._cond_text(child.required_if)}", "present")
                elif v is None and not child.nullable:
                    self.add(child, p, "null", f"{p} may not be null", "a value", None)
                continue
            if child.forbidden_if is not None and self._cond(child.forbidden_if, resolved):
                self.add(child, p, "forbidden_if", f"{p} must be absent when {self._cond_text(child.forbidden_if)}", "absent", v)
            self.value(child, v, p)
        if node.one_of and not any(all(_present(resolved.get(n, MISSING)) for n in g) for g in node.one_of):
            opts = " or ".join("(" + ", ".join(g) + ")" for g in node.one_of)
            self.add(node, path or "$", "one_of", f"{path or 'body'}: one of {opts} must be fully present", opts)
        if node.extra != "ignore":
            for key in value:
                if key not in children and key not in seen:
                    p = join(path, key)
                    if node.extra == "warn":
                        self.warnings.append(Issue(path=p, rule="unknown", message=f"{p} is not a field of this message", severity="warn"))
                    else:
                        self.add(None, p, "unknown", f"{p} is not a field of this message", None, None)

    def list_(self, node: Node, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.add(node, path, "type", f"{path or 'body'}: expected a list, got {_type_name(value)}", "list", _type_name(value))
            return
        n = len(value)
        if n < node.min_items or (node.max_items is not None and n > node.max_items):
            self.add(node, path, "cardinality", f"{path or 'body'}: {n} items, expected {node.card_text()}", node.card_text(), n)
        for i, item in enumerate(value):
            p = join(path, i)
            if node.children is not None:
                self.object(node, item, p)
            elif node.item is not None:
                if item is None:
                    self.add(node.item, p, "null", f"{p}: list items may not be null", "a value", None)
                else:
                    self.value(node.item, item, p)

    # -- values -------------------------------------------------------------------------
    def value(self, node: Node, v: Any, path: str) -> None:
        if node.carried_as is not None:
            if not isinstance(v, str):
                self.add(node, path, "type", f"{path} must be a string carrying {node.carried_as.upper()}", "string", _type_name(v))
                return
            try:
                inner = self.decode_carried(node, v)
            except MessageError as exc:
                self.add(node, path, "parse", f"{path}: {exc.reason}", node.carried_as, None)
                return
            saved, self.lenient = self.lenient, node.carried_as == "xml" or self.lenient
            try:
                (self.list_ if node.is_list else self.object)(node, inner, path)
            finally:
                self.lenient = saved
            return
        kind = node.kind
        if kind == "object":
            self.object(node, v, path)
        elif kind == "list":
            self.list_(node, v, path)
        elif kind == "string":
            self.string(node, v, path)
        elif kind in ("date", "datetime", "time"):
            if not isinstance(v, str):
                self.add(node, path, "type", f"{path}: expected a {kind} string, got {_type_name(v)}", "string", _type_name(v))
            elif node.date is not None and not node.date.check(v):
                self.add(node, path, "format", f"{path}: {v!r} is not a valid {kind} in format {node.date.spec}", node.date.spec, v)
        elif kind in ("int", "number", "decimal"):
            self.number(node, v, path)
        elif kind == "bool":
            ok = isinstance(v, bool) or (self.lenient and isinstance(v, (str, int)) and str(v).lower() in ("true", "false", "0", "1"))
            if not ok:
                self.add(node, path, "type", f"{path}: expected a boolean, got {_type_name(v)}", "bool", _short(v))
        elif kind == "binary":
            self.binary(node, v, path)
        elif kind == "file":
            self.file(node, v, path)
        if node.custom is not None:
            self.custom(node, v, path)

    def custom(self, node: Node, v: Any, path: str) -> None:
        """A plugin field type's own rule, on a value of its base type (a wrong base type is reported already)."""
        ct = node.custom
        assert ct is not None
        if node.encrypted and not self.plaintext:
            return
        base = ct.base
        if self.lenient and isinstance(v, str) and base in (int, float):
            try:
                v = base(v.strip())
            except ValueError:
                return
        elif self.lenient and base is str and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        elif base is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, base) or (isinstance(v, bool) and base is not bool):
            return
        try:
            reason = ct.validate(v)
        except ExtensionError as exc:
            self.add(node, path, "plugin", f"{path}: {exc}", ct.name, v)
            return
        if reason:
            self.add(node, path, f"type:{ct.name}", f"{path}: {reason}", ct.name, v)

    def decode_carried(self, node: Node, text: str) -> Any:
        if node.carried_as == "json":
            try:
                return msgspec.json.decode(text)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                raise MessageError(f"not valid JSON inside the string: {exc}") from None
        root = parse_xml(text.encode("utf-8"))
        if node.root and root.tag.rpartition("}")[2] != node.root:
            raise MessageError(f"XML root is <{root.tag.rpartition('}')[2]}>, expected <{node.root}>")
        return xml_to_obj(root, node)

    def string(self, node: Node, v: Any, path: str) -> None:
        if not isinstance(v, str):
            if self.lenient and isinstance(v, (int, float)) and not isinstance(v, bool):
                v = str(v)
            else:
                self.add(node, path, "type", f"{path}: expected a string, got {_type_name(v)}", "string", _short(v))
                return
        if node.encrypted and not self.plaintext:
            return
        if node.max_len is not None or node.min_len is not None:
            n = len(v) if node.unit == "chars" else len(v.encode(node.encoding, errors="replace"))
            unit = "characters" if node.unit == "chars" else f"bytes in {node.encoding}"
            if node.max_len is not None and n > node.max_len:
                self.add(node, path, "length", f"{path}: {n} {unit}, at most {node.max_len} allowed", node.length_text(), n)
            elif node.min_len is not None and n < node.min_len:
                self.add(node, path, "length", f"{path}: {n} {unit}, at least {node.min_len} required", node.length_text(), n)
        if node.pattern is not None and not node.pattern.fullmatch(v):
            self.add(node, path, "pattern", f"{path}: does not match {node.pattern.pattern}", node.pattern.pattern, v)
        if node.codes is not None and v not in node.codes:
            sample = ", ".join(list(node.codes)[:8]) + (", …" if len(node.codes) > 8 else "")
            self.add(node, path, "code", f"{path}: {v!r} is not in code table {node.codes_id} ({sample})", node.codes_id, v)
        for name, fn in node.checks:
            try:
                reason = fn(v)
            except ExtensionError as exc:
                self.add(node, path, "plugin", f"{path}: {exc}", name, v)
                continue
            if reason:
                self.add(node, path, f"check:{name}", f"{path}: {reason}", name, v)

    def number(self, node: Node, v: Any, path: str) -> None:
        kind = node.kind
        if isinstance(v, bool) or not isinstance(v, (int, float, str)) or (isinstance(v, str) and not self.lenient):
            self.add(
                node,
                path,
                "type",
                f"{path}: expected {'an integer' if kind == 'int' else 'a number'}, got {_type_name(v)}",
                kind,
                _short(v),
            )
            return
        try:
            d = Decimal(v.strip() if isinstance(v, str) else repr(v) if isinstance(v, float) else v)
            if not d.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            self.add(node, path, "type", f"{path}: {v!r} is not a number", kind, _short(v))
            return
        if kind == "int" and (isinstance(v, float) or d != d.to_integral_value()):
            self.add(node, path, "type", f"{path}: expected an integer, got {v!r}", "int", _short(v))
            return
        if kind == "decimal" and node.precision is not None:
            # trailing zeros after the point don't count against the scale: 285.10 fits (5,2)
            intd, frac = decimal_digits(d.normalize())
            assert node.scale is not None
            if frac > node.scale or intd > node.precision - node.scale:
                self.add(
                    node,
                    path,
                    "decimal",
                    f"{path}: {v} does not fit decimal({node.precision},{node.scale})",
                    f"decimal({node.precision},{node.scale})",
                    v,
                )
                return
        if node.vmin is not None and d < Decimal(str(node.vmin)):
            self.add(node, path, "range", f"{path}: {v} is below the minimum {node.vmin}", f">= {node.vmin}", v)
        if node.vmax is not None and d > Decimal(str(node.vmax)):
            self.add(node, path, "range", f"{path}: {v} is above the maximum {node.vmax}", f"<= {node.vmax}", v)
        if node.max_len is not None and len(str(v)) > node.max_len:
            self.add(node, path, "length", f"{path}: {len(str(v))} characters, at most {node.max_len}", node.max_len, len(str(v)))
        if node.codes is not None and str(v).strip() not in node.codes:
            self.add(node, path, "code", f"{path}: {v!r} is not in code table {node.codes_id}", node.codes_id, v)

    def binary(self, node: Node, v: Any, path: str) -> None:
        if not isinstance(v, str):
            self.add(node, path, "type", f"{path}: expected a {node.binary_format} string, got {_type_name(v)}", "string", _type_name(v))
            return
        try:
            raw = bytes.fromhex(v) if node.binary_format == "hex" else base64.b64decode(v, validate=True)
        except (ValueError, binascii.Error):
            self.add(node, path, "format", f"{path}: not valid {node.binary_format}", node.binary_format, None)
            return
        if node.max_len is not None and len(v) > node.max_len:
            self.add(node, path, "length", f"{path}: {len(v)} characters, at most {node.max_len}", node.max_len, len(v))
        if node.max_bytes is not None and len(raw) > node.max_bytes:
            self.add(node, path, "size", f"{path}: {len(raw)} bytes decoded, at most {node.max_bytes}", node.max_bytes, len(raw))

    def file(self, node: Node, v: Any, path: str) -> None:
        """A multipart file part, given as {filename, content_type, size} (or bytes)."""
        if isinstance(v, (bytes, bytearray)):
            size, ctype = len(v), None
        elif isinstance(v, dict) and "size" in v:
            size, ctype = int(v["size"]), v.get("content_type")
        else:
            self.add(node, path, "type", f"{path}: expected a file part", "file", _type_name(v))
            return
        if node.max_bytes is not None and size > node.max_bytes:
            self.add(node, path, "size", f"{path}: file of {size} bytes exceeds the limit of {node.max_bytes} bytes", node.max_bytes, size)
        if node.media_types and ctype and ctype.split(";")[0].strip() not in node.media_types:
            self.add(node, path, "type", f"{path}: content type {ctype} not accepted", list(node.media_types), ctype)

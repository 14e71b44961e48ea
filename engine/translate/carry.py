"""Serialise `carried_as` payloads: a mapping builds the logical tree, the wire wants strings.

xinjiang_mr's strReportInfo is an XML document inside a SOAP string parameter; wedoctor's data
lists are JSON inside a string. Mappings target the fields inside (`strReportInfo.labmaster`),
and this step, compiled once from the target spec, turns those subtrees into the strings the
validator, the crypto envelope and the transport expect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from engine.spec.nodes import Node
from engine.spec.xmlsafe import obj_to_xml, to_bytes

Encoder = Callable[[Any], Any]


def encode_value(node: Node, value: Any) -> Any:
    """One carried value as its wire string (already-encoded strings pass through)."""
    if isinstance(value, str) or value is None:
        return value
    if node.carried_as == "json":
        return msgspec.json.encode(value).decode("utf-8")
    return to_bytes(obj_to_xml(node.root or node.name, value, node)).decode("utf-8")


def _has_carried(node: Node) -> bool:
    if node.carried_as is not None:
        return True
    return any(_has_carried(c) for c in (node.children or {}).values()) or (node.item is not None and _has_carried(node.item))


def encoder(node: Node) -> Encoder | None:
    """A function encoding every carried_as subtree of a message shaped like `node`; None if there is none."""
    if not _has_carried(node):
        return None
    return _compile(node)


def _compile(node: Node) -> Encoder:
    if node.carried_as is not None:
        return lambda v: encode_value(node, v)
    children = {k: _compile(c) for k, c in (node.children or {}).items() if _has_carried(c)}

    def obj(v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out = dict(v)
        for k, enc in children.items():
            if k in out:
                out[k] = enc(out[k])
        return out

    if node.is_list:
        if node.children is None and node.item is not None:
            inner = _compile(node.item)
            return lambda v: [inner(i) for i in v] if isinstance(v, list) else v
        return lambda v: [obj(i) for i in v] if isinstance(v, list) else v
    return obj

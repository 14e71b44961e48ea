"""A request as plain data: carried payloads (XML or JSON inside strings) opened up.

The validator walks carried payloads but hands back the outer message; a twin needs the inside
(the labmaster items of xinjiang's strReportInfo, the rows of wedoctor's `data`) to store records,
match queries and compute natural keys.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.errors import MessageError
from engine.spec.nodes import Node
from engine.spec.xmlsafe import local, parse_xml, xml_to_obj


def open_carried(node: Node | None, value: Any) -> Any:
    """`value` with every `carried_as` string replaced by what it carries (left as is if unreadable)."""
    if node is None:
        return value
    if node.carried_as and isinstance(value, str):
        try:
            if node.carried_as == "json":
                value = msgspec.json.decode(value.encode("utf-8"))
            else:
                root = parse_xml(value.encode("utf-8"))
                if node.root and local(root.tag) != node.root:
                    return value
                value = xml_to_obj(root, node)
        except (MessageError, msgspec.DecodeError):
            return value
    if isinstance(value, list):
        inner = node if node.children is not None else node.item
        return [open_carried(inner, v) for v in value]
    if isinstance(value, dict) and node.children is not None:
        return {k: open_carried(node.children.get(k), v) for k, v in value.items()}
    return value


def soap_body(node: Node | None, text: str) -> Any:
    """The interface's request fields from the SOAP body parameter (pe_system msgBody: `<root>` XML)."""
    if node is None:
        return {}
    try:
        return open_carried(node, xml_to_obj(parse_xml(text.encode("utf-8")), node))
    except MessageError:
        return {}

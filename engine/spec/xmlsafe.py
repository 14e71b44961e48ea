"""Hardened XML: no network, no DTD, no entities; and XML <-> field-model conversion.

Every XML byte from outside goes through `parse_xml`. A DOCTYPE is refused outright: SOAP
forbids it and no platform here needs one, and refusing it defeats entity bombs and external
entities before they can cost anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxml import etree

from engine.errors import MessageError

if TYPE_CHECKING:
    from engine.spec.nodes import Node

MAX_XML_BYTES = 32 * 1024 * 1024
_NO_DTD = "XML with a DOCTYPE is refused (entity expansion and external entities are not allowed)"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML. Raises MessageError with a one-line reason."""
    if len(data) > MAX_XML_BYTES:
        raise MessageError(f"XML of {len(data)} bytes exceeds {MAX_XML_BYTES}", rule="size")
    if b"<!doctype" in data[:4096].lower():
        raise MessageError(_NO_DTD, rule="parse")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise MessageError(f"malformed XML: {exc.msg} (line {exc.lineno})") from None
    except ValueError as exc:
        raise MessageError(f"malformed XML: {exc}") from None
    if root is None:
        raise MessageError("empty XML document")
    if root.getroottree().docinfo.internalDTD is not None:
        raise MessageError(_NO_DTD, rule="parse")
    return root


def local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _text(el: etree._Element) -> str:
    return (el.text or "").strip() if len(el) == 0 else ""


def _convert(el: etree._Element, node: Node | None) -> Any:
    if node is None:  # unknown element: keep its shape so the walker can report it
        return {local(c.tag): _convert(c, None) for c in el} if len(el) else (el.text or "")
    if node.children is not None:
        return xml_to_obj(el, node)
    return el.text or ""


def xml_to_obj(el: etree._Element, node: Node) -> dict[str, Any]:
    """Map an element's children (and attributes) onto the node's fields.

    Lists are repeated child elements named as the field, or (with xml_item) a wrapper
    element whose children are the items. Scalars are element text, so validation runs lenient.
    """
    out: dict[str, Any] = {}
    children = node.children or {}
    for name, child in children.items():
        if child.xml_attribute:
            # an alias keeps its own key so the walker can accept it and say so
            key = next((k for k in (name, *child.aliases) if k in el.attrib), None)
            if key is not None:
                out[key] = el.attrib[key]
        elif child.spec.xml_text and (el.text or "").strip():
            out[name] = (el.text or "").strip()
    for c in el:
        if not isinstance(c.tag, str):
            continue
        name = local(c.tag)
        child = children.get(name)
        if child is not None and child.is_list:
            if child.xml_item:
                items = [_item(i, child) for i in c if local(i.tag) == child.xml_item]
                out[name] = items
            else:
                out.setdefault(name, []).append(_item(c, child))
        elif name in out:
            out[name] = [out[name], _convert(c, child)] if not isinstance(out[name], list) else [*out[name], _convert(c, child)]
        else:
            out[name] = _convert(c, child)
    return out


def _item(el: etree._Element, node: Node) -> Any:
    if node.children is not None:
        return xml_to_obj(el, node)
    return el.text or ""


def obj_to_xml(tag: str, obj: Any, node: Node | None) -> etree._Element:
    """The inverse of xml_to_obj, used to build payloads and twin answers."""
    el = etree.Element(tag)
    children = node.children if node is not None else None
    if isinstance(obj, dict):
        for k, v in obj.items():
            child = children.get(k) if children else None
            if child is not None and child.xml_attribute:
                el.set(k, "" if v is None else str(v))
            elif child is not None and child.spec.xml_text:
                el.text = "" if v is None else str(v)
            elif isinstance(v, list):
                if child is not None and child.xml_item:
                    wrap = etree.SubElement(el, k)
                    for item in v:
                        wrap.append(obj_to_xml(child.xml_item, item, child))
                else:
                    for item in v:
                        el.append(obj_to_xml(k, item, child))
            else:
                el.append(obj_to_xml(k, v, child))
    elif obj is not None:
        el.text = obj if isinstance(obj, str) else str(obj).lower() if isinstance(obj, bool) else str(obj)
    return el


def to_bytes(el: etree._Element, declaration: bool = False) -> bytes:
    return etree.tostring(el, encoding="utf-8", xml_declaration=declaration)

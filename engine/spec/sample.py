"""Synthesise a valid message from a Node tree: for benches, scaffolds, twins and docs.

Deterministic: the same spec gives the same sample, so benches and tests are repeatable.
"""

from __future__ import annotations

from typing import Any

from engine.spec.checks import id_card_check_digit
from engine.spec.nodes import Node


def _date(node: Node) -> str:
    assert node.date is not None
    out, fmt, i = [], node.date.spec, 0
    values = {"yyyy": "2024", "MM": "03", "dd": "18", "HH": "17", "mm": "05", "ss": "09", "SSS": "123"}
    while i < len(fmt):
        if fmt[i] == "'":
            end = fmt.index("'", i + 1)
            out.append(fmt[i + 1 : end])
            i = end + 1
            continue
        for tok in ("yyyy", "SSS", "MM", "dd", "HH", "mm", "ss"):
            if fmt.startswith(tok, i):
                out.append(values[tok])
                i += len(tok)
                break
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def scalar(node: Node, name: str) -> Any:
    if node.spec.example is not None and not isinstance(node.spec.example, (dict, list)):
        return node.spec.example
    if node.codes:
        return next(iter(node.codes))
    if node.custom is not None and (made := node.custom.sample()) is not None:
        return made
    kind = node.kind
    if kind in ("date", "datetime", "time"):
        return _date(node)
    if kind == "int":
        return int(node.vmin or 1)
    if kind in ("number", "decimal"):
        return 12.5 if node.scale is None or node.scale >= 1 else 12
    if kind == "bool":
        return True
    if kind == "binary":
        return "00ff" if node.binary_format == "hex" else "AAE="
    if any(n == "id_card" for n, _ in node.checks):
        return "11010519491231002" + id_card_check_digit("11010519491231002")
    if any(n == "mobile" for n, _ in node.checks):
        return "13800138000"
    text = f"{name[:6]}1"
    lo, hi = node.min_len or 1, node.max_len
    if hi is not None and len(text) > hi:
        text = text[:hi]
    if len(text) < lo:
        text = text + "0" * (lo - len(text))
    return text


def sample(node: Node, *, full: bool = True, name: str = "v") -> Any:
    """A valid value for `node`; with full, optional fields are filled too."""
    if node.children is not None:
        obj = {
            k: sample(c, full=full, name=k)
            for k, c in node.children.items()
            if (full or c.required) and c.kind != "file" and not c.carried_as and not c.pattern
        }
        return [obj] * max(1, node.min_items) if node.is_list else obj
    if node.is_list and node.item is not None:
        return [sample(node.item, full=full, name=name)] * max(1, node.min_items)
    return scalar(node, name)

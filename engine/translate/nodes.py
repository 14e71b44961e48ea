"""Walking resolved spec nodes along mapping paths (shared by the compiler and the linter)."""

from __future__ import annotations

import dataclasses

from engine.spec.nodes import Node

ANY = Node(name="*", kind="any", spec=None)  # type: ignore[arg-type]
"""A place whose shape the spec leaves open (`type: any`): nothing below it can be checked."""


def item_of(node: Node) -> Node:
    """The node of one item of a list node (a list of objects keeps its children on the list node)."""
    if node.item is not None:
        return node.item
    return dataclasses.replace(node, kind="object", min_items=0, max_items=None, required=True)


def step(node: Node | None, token: str | int) -> Node | None:
    """The child of `node` at `token`, ANY where unknowable, None where the spec has no such field."""
    if node is None or node is ANY or node.kind == "any":
        return ANY
    if isinstance(token, int):
        if node.is_list:
            return item_of(node)
        return node if token == 0 and node.children is not None else None  # one object = a one-item list
    if node.is_list:
        return None
    children = node.children
    if children is None:
        return None
    got = children.get(token)
    if got is None:
        got = next((c for c in children.values() if token in c.aliases), None)
    return got


def walk(node: Node | None, tokens: tuple[str | int, ...]) -> tuple[Node | None, int]:
    """Follow tokens; returns (node or None, how many tokens matched)."""
    cur = node
    for i, t in enumerate(tokens):
        nxt = step(cur, t)
        if nxt is None:
            return None, i
        cur = nxt
    return cur, len(tokens)

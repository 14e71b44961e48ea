"""YAML with positions: every mapping key and list item remembers its line.

msgspec decodes YAML but forgets where things were; integrators need `file:line`. This
loader builds plain Python objects plus a side table {path-tuple: line}, and keeps every
mapping key as the verbatim string the author wrote (so code `01` stays "01", not 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

try:  # the C loader is ~5x faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Base  # type: ignore[assignment]

Pos = dict[tuple[Any, ...], int]


class YamlError(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"{line}: {message}")


def _build(node: yaml.Node, loader: yaml.SafeLoader, path: tuple[Any, ...], pos: Pos) -> Any:
    pos.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        own = {id(k) for k, _ in node.value if not (isinstance(k, yaml.ScalarNode) and k.tag == "tag:yaml.org,2002:merge")}
        loader.flatten_mapping(node)  # resolves `<<` merge keys; the mapping's own keys override merged ones
        out: dict[str, Any] = {}
        explicit: set[str] = set()
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise YamlError(knode.start_mark.line + 1, "mapping keys must be plain scalars")
            key = knode.value  # verbatim: never int/bool/None
            if key in explicit and id(knode) in own:
                raise YamlError(knode.start_mark.line + 1, f"duplicate key {key!r}")
            if id(knode) in own:
                explicit.add(key)
            pos[(*path, key)] = knode.start_mark.line + 1
            out[key] = _build(vnode, loader, (*path, key), pos)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, loader, (*path, i), pos) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load(text: str) -> tuple[Any, Pos]:
    """Parse one YAML document into (object, positions)."""
    loader = _Base(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {(): 1}
        pos: Pos = {}
        return _build(node, loader, (), pos), pos
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlError(line, f"YAML syntax: {exc.problem or exc}") from None
    finally:
        loader.dispose()


def load_file(path: Path) -> tuple[Any, Pos]:
    return load(path.read_text(encoding="utf-8"))


def line_of(pos: Pos, path: tuple[Any, ...]) -> int:
    """The line of `path`, or of its nearest ancestor that has one."""
    while path:
        if path in pos:
            return pos[path]
        path = path[:-1]
    return pos.get((), 1)

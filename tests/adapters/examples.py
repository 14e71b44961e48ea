"""Valid request examples taken from the specs themselves (the documents' own messages)."""

from __future__ import annotations

import copy
from typing import Any

from engine.spec import CompiledInterface


def example(iface: CompiledInterface) -> tuple[Any, dict[str, str]]:
    """(body, headers) of the interface's first valid request example."""
    for ex in iface.spec.examples or []:
        if ex.part == "request" and ex.valid and ex.body is not None:
            return copy.deepcopy(ex.body), dict(ex.headers or {})
    raise LookupError(f"{iface.qualified_id} has no valid request example")

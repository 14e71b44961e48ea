"""Code maps: a hospital's local codes to the standard codes a model or platform wants.

Compiled to one dict lookup. An unmapped code is an error by default, because sending a
platform a code it does not know (or a guessed one) is worse than stopping with a message that
names the code, the code map, the field and the record path; a map may instead declare a
`default`, or `unmapped: keep | omit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from engine.translate.errors import UnmappedCode
from engine.translate.model import CodeMap
from engine.translate.paths import MISSING


def key_of(value: Any) -> str:
    """Code-map keys are strings: 1 -> "1", True -> "true", 1.0 -> "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class CodeMapLookup:
    """`(code, field, record_path, mapping) -> standard code | MISSING`; `table` holds the map's own
    entries, so a caller can try them before working out the paths an error would name."""

    __slots__ = ("cid", "default", "has_default", "table", "unmapped")

    def __init__(self, cid: str, cm: CodeMap) -> None:
        self.cid = cid
        self.table: dict[str, Any] = {str(k): v for k, v in cm.map.items()}
        self.has_default = cm.default is not msgspec.UNSET
        self.default, self.unmapped = cm.default, cm.unmapped

    def __call__(self, code: Any, field: str, source: str, mapping: str) -> Any:
        got = self.table.get(key_of(code), MISSING)
        if got is not MISSING:
            return got
        if self.has_default:
            return self.default
        if self.unmapped == "keep":
            return code
        if self.unmapped == "omit":
            return MISSING
        raise UnmappedCode(code, self.cid, field=field, source=source, mapping=mapping)


def compile_map(cid: str, cm: CodeMap) -> Callable[[Any, str, str, str], Any]:
    """A lookup `(code, field, record_path, mapping) -> standard code | MISSING`."""
    return CodeMapLookup(cid, cm)

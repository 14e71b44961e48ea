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


def compile_map(cid: str, cm: CodeMap) -> Callable[[Any, str, str, str], Any]:
    """A lookup `(code, field, record_path, mapping) -> standard code | MISSING`."""
    table = {str(k): v for k, v in cm.map.items()}
    has_default = cm.default is not msgspec.UNSET
    default, unmapped = cm.default, cm.unmapped

    def lookup(code: Any, field: str, source: str, mapping: str) -> Any:
        k = key_of(code)
        got = table.get(k, MISSING)
        if got is not MISSING:
            return got
        if has_default:
            return default
        if unmapped == "keep":
            return code
        if unmapped == "omit":
            return MISSING
        raise UnmappedCode(code, cid, field=field, source=source, mapping=mapping)

    return lookup

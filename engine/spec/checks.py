"""The built-in value checks specs name in `checks: [id_card]`.

They register with the extension registry like any plugin's checks (engine.plugins.builtin, under
the plugin name `specbridge`); the resolver looks every name up there. A check takes the (string)
value and its settings and returns None when fine, or a short reason that never echoes the value.
"""

from __future__ import annotations

import re
from typing import Any

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def id_card_check_digit(first17: str) -> str:
    """GB 11643-1999 check digit (ISO 7064 MOD 11-2)."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_card(value: str, settings: Any = None) -> str | None:
    """An 18-digit resident ID number (GB 11643) with a correct check digit. The value is never echoed."""
    v = value.upper()
    if not _ID_RE.match(v):
        return "not an 18-character resident ID number"
    if id_card_check_digit(v[:17]) != v[17]:
        return "resident ID number check digit is wrong"
    return None


def mobile(value: str, settings: Any = None) -> str | None:
    """An 11-digit mainland mobile number (1[3-9]xxxxxxxxx)."""
    return None if _MOBILE_RE.match(value) else "not an 11-digit mainland mobile number"

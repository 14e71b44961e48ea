"""Named value checks that specs use by name (`checks: [id_card]`).

The registry is open: plugins register more through the same `register` call. A check takes
the (string) value and returns None when fine, or a short reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Check = Callable[[str], str | None]

_REGISTRY: dict[str, Check] = {}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def register(name: str, check: Check) -> None:
    _REGISTRY[name] = check


def get(name: str) -> Check | None:
    return _REGISTRY.get(name)


def names() -> list[str]:
    return sorted(_REGISTRY)


def id_card_check_digit(first17: str) -> str:
    """GB 11643-1999 check digit (ISO 7064 MOD 11-2)."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_card(value: str) -> str | None:
    """An 18-digit resident ID number with a correct check digit. The value is never echoed."""
    v = value.upper()
    if not _ID_RE.match(v):
        return "not an 18-character resident ID number"
    if id_card_check_digit(v[:17]) != v[17]:
        return "resident ID number check digit is wrong"
    return None


def mobile(value: str) -> str | None:
    return None if _MOBILE_RE.match(value) else "not an 11-digit mainland mobile number"


register("id_card", id_card)
register("mobile", mobile)

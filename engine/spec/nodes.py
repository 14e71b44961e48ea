"""Resolved field tree: what a validator, a docs page or a WSDL is compiled from.

A spec `Field` may lean on a group (`use`), an override, platform defaults and a code table
by reference; `Node` is the same field with every reference resolved and every default applied,
so downstream compilers never look anything up again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from engine.spec.dates import DEFAULT_FORMATS, DateFormat
from engine.spec.model import Condition, Field

if TYPE_CHECKING:
    from engine.plugins.spec import BoundType

SCALARS = frozenset({"string", "int", "number", "decimal", "date", "datetime", "time", "bool", "binary", "file", "any"})


@dataclass(slots=True, eq=False)
class Node:
    name: str
    kind: str
    spec: Field
    required: bool = False
    min_items: int = 0
    max_items: int | None = None
    nullable: bool = True
    allow_empty: bool = False
    min_len: int | None = None
    max_len: int | None = None
    unit: str = "chars"
    encoding: str = "utf-8"
    date: DateFormat | None = None
    binary_format: str | None = None
    pattern: re.Pattern[str] | None = None
    codes: dict[str, str] | None = None
    codes_id: str | None = None
    codes_strict: bool = True
    vmin: float | None = None
    vmax: float | None = None
    precision: int | None = None
    scale: int | None = None
    warn: bool = False
    required_if: Condition | None = None
    forbidden_if: Condition | None = None
    checks: list[tuple[str, Callable[[str], str | None]]] = field(default_factory=list)
    custom: BoundType | None = None
    """A plugin field type (its base is `kind`): validated after the base type's rules."""
    sensitive: bool = False
    """A personal identifier (id_card check, a sensitive plugin type or check): findings never echo the value."""
    children: dict[str, Node] | None = None
    item: Node | None = None
    one_of: list[list[str]] | None = None
    extra: str = "forbid"
    carried_as: str | None = None
    root: str | None = None
    aliases: tuple[str, ...] = ()
    encrypted: bool = False
    xml_attribute: bool = False
    xml_item: str | None = None
    max_bytes: int | None = None
    media_types: tuple[str, ...] = ()

    @property
    def is_list(self) -> bool:
        return self.kind == "list"

    @property
    def is_object(self) -> bool:
        return self.kind == "object"

    @property
    def has_children(self) -> bool:
        return self.children is not None

    def card_text(self) -> str:
        if self.is_list:
            return f"{self.min_items}..{self.max_items if self.max_items is not None else 'n'}"
        return "1..1" if self.required else "0..1"

    def type_text(self) -> str:
        if self.custom is not None:
            return self.custom.name
        if self.kind == "decimal" and self.precision is not None:
            return f"decimal({self.precision},{self.scale})"
        if self.date is not None:
            return f"{self.kind} `{self.date.spec}`"
        if self.kind == "list" and self.item is not None:
            return f"list of {self.item.type_text()}"
        if self.kind == "binary":
            return f"binary ({self.binary_format or 'base64'})"
        return self.kind

    def length_text(self) -> str:
        if self.max_len is None and self.min_len is None:
            return ""
        lo = self.min_len or 0
        hi = self.max_len
        unit = "" if self.unit == "chars" else f" bytes ({self.encoding})"
        if hi is None:
            return f"≥{lo}{unit}"
        return (f"{hi}" if lo == 0 else (f"{lo}" if lo == hi else f"{lo}..{hi}")) + unit


def decimal_digits(value: Decimal) -> tuple[int, int]:
    """(integer digits, fraction digits) of a finite decimal, as written."""
    _, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    frac = max(0, -exp)
    intd = max(0, len(digits) + exp)
    return intd, frac


def date_default(kind: str) -> str:
    return DEFAULT_FORMATS[kind]

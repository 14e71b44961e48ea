"""The mapping language, as msgspec types (the schema of `specs/mappings/*.yaml`).

Like the spec language (engine/spec/model.py), these Structs are the single source of truth:
the loader decodes YAML into them with unknown keys rejected and every finding located by
file and line, so a misspelt rule key (`form:` for `from:`) never silently maps nothing.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from engine.spec.model import Spec


class DateRule(Spec, kw_only=True):
    """Re-format a date/time string. Either side may be left out: it is then taken from the
    source field's or the target field's own `format` in its spec."""

    in_: str | list[str] | None = msgspec.field(default=None, name="in")
    """Java-style input format(s), e.g. yyyyMMddHHmmss; a list is tried in order."""
    out: str | None = None


class NumberRule(Spec, kw_only=True):
    """Round a number to a fixed scale and emit it as a JSON number (default) or a string."""

    scale: int | None = None
    as_: Literal["number", "string"] = msgspec.field(default="number", name="as")
    rounding: Literal["half_up", "half_even", "down"] = "half_up"


class Rule(Spec, kw_only=True):
    """How one target field gets its value. Exactly one of from / value / expr / each / fields
    produces the value; codes, date, number and type then transform it, in that order."""

    from_: str | list[str] | None = msgspec.field(default=None, name="from")
    """Source path (`patient.name`, `items[0].code`, `$.org_code` from the record root, `.` the
    current item); a list takes the first path that has a value."""
    value: Any = msgspec.UNSET
    """A constant."""
    expr: str | None = None
    """A jinja2 expression `{{ ... }}` (sandboxed), given `record`, `item`, `index` and helpers."""
    default: Any = msgspec.UNSET
    """Used when the source value is absent, null or ""."""
    codes: str | None = None
    """Code map id (specs/mappings/codes/<id>.yaml): local code -> standard code."""
    date: DateRule | None = None
    number: NumberRule | None = None
    type: Literal["string", "int", "number", "bool"] | None = None
    """Final cast (a numeric source column to a string field, "1" to 1...)."""
    each: str | list[str] | None = None
    """Map a list item by item: a source path to a list (a single object counts as a one-item list);
    several paths: their items one after another in one target list (xinjiang labmaster + exammaster)."""
    where: str | None = None
    """With each: a jinja2 expression; items for which it is false are skipped."""
    fields: dict[str, str | list[str] | Rule] | None = None
    """With each: the fields of each target item. Without each: build a nested object."""
    note: str | None = None
    """Why this rule was chosen (a default where the source has nothing, a lossy code map...)."""


RuleSpec = str | list[str] | Rule
"""A rule, or its short forms: a source path, or a list of paths (the first with a value)."""


class Mapping(Spec, kw_only=True):
    """One declarative field map from a source (a source interface's row, a canonical model or a
    platform interface's response) to a target (a canonical model or a platform request)."""

    id: str | None = None
    title: str | None = None
    description: str | None = None
    from_: str = msgspec.field(name="from")
    """`sources/<id>/<iface>`, `canonical/<model>` or `<platform>/<iface>`."""
    to: str
    """`canonical/<model>` or `<platform>/<iface>` (its request body)."""
    part: Literal["request", "response"] = "request"
    """Which body of a platform-interface `from` is read: `response` for mappings back."""
    to_part: Literal["request", "response"] = "request"
    """Which body of a `to` interface is written: `response` for the answer a synchronous query
    route returns to its source (`sources/hospital_his/recognition_query`, to_part: response)."""
    absent: Literal["omit", "empty"] = "omit"
    """A scalar with no value is left out (omit) or sent as "" (empty: platforms that want every key)."""
    supplied: list[str] | None = None
    """Target fields filled later by the envelope or auth layer (not by this mapping); auth-carried
    body fields (xinjiang_mr strCredential) are supplied implicitly."""
    fields: dict[str, RuleSpec]
    source: str | None = None
    note: str | None = None


class CodeMap(Spec, kw_only=True):
    """Local codes to standard codes (`specs/mappings/codes/<id>.yaml`)."""

    id: str | None = None
    title: str
    to: str | None = None
    """The standard code table the values belong to (checked by lint when the target field has one)."""
    map: dict[str, Any]
    """local code -> standard code (keys verbatim strings; booleans are looked up as "true"/"false")."""
    default: Any = msgspec.UNSET
    """Standard code for any local code not in `map`. Without it an unmapped code is an error."""
    unmapped: Literal["error", "keep", "omit"] = "error"
    """Without a default: raise (error), pass the local code through (keep) or leave the field out (omit)."""
    source: str | None = None
    note: str | None = None

"""Errors raised while translating one record.

A translation failure is the integrator's to fix (a code missing from a code map, a date in an
unexpected format), so the error names the offending value, the target field and where in the
record the value came from: `items[2].RESULT_FLAG`, not a stack trace.
"""

from __future__ import annotations

from typing import Any

from engine.errors import SpecbridgeError


class TranslateError(SpecbridgeError):
    """One record could not be translated by one mapping."""

    def __init__(self, message: str, *, mapping: str = "", field: str = "", source: str = "", value: Any = None) -> None:
        self.mapping = mapping
        self.field = field
        """Target path, e.g. `strReportInfo.lab_subitem[2].result_interpre`."""
        self.source = source
        """Record path the value came from, e.g. `[2].RESULT_FLAG`."""
        self.value = value
        self.reason = message
        where = f" (field {field}, from record path {source or '(record)'})" if field else ""
        prefix = f"mapping {mapping}: " if mapping else ""
        super().__init__(f"{prefix}{message}{where}")


class UnmappedCode(TranslateError):
    """A local code has no entry in its code map and the map has no default."""

    def __init__(self, code: Any, code_map: str, *, field: str, source: str, mapping: str = "") -> None:
        self.code = code
        self.code_map = code_map
        super().__init__(
            f"code {code!r} is not in code map `{code_map}` (add it to specs/mappings/codes/{code_map}.yaml, or give the map a default)",
            mapping=mapping,
            field=field,
            source=source,
            value=code,
        )


class NoRoute(SpecbridgeError):
    """No chain of mappings leads from a source to a target."""

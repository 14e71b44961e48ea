"""A compiled mapping: what the runtime calls once per record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.spec.compiled import CompiledBody, Result
from engine.spec.sample import sample
from engine.translate.carry import Encoder, encode_value
from engine.translate.compile import Builder
from engine.translate.model import Mapping
from engine.translate.paths import Scope


@dataclass(eq=False)
class Endpoint:
    """One side of a mapping: `canonical/lab_report`, `hospital_lis/lab_report`, `city_lab_mr/HR01` (+ part)."""

    ref: str
    """Normalised: `canonical/<model>` or `<platform>/<interface>` (sources lose their `sources/` prefix)."""
    kind: str
    """model | source | platform"""
    part: str = "request"
    body: CompiledBody | None = None

    @property
    def key(self) -> str:
        """What chains match on: a platform response is a different thing from its request."""
        return f"{self.ref}#response" if self.part == "response" else self.ref


@dataclass(eq=False)
class Translator:
    """One mapping compiled to closures. `translate(record)` gives the target message ready to
    validate and send (carried_as payloads serialised); `build(record)` the logical tree."""

    id: str
    file: str
    spec: Mapping
    source: Endpoint
    target: Endpoint
    _build: Builder
    _encode: Encoder | None = None
    supplied: tuple[str, ...] = field(default_factory=tuple)
    """Target fields the envelope or auth layer fills at send time."""
    code: str = ""
    """The generated Python of this mapping's builders (empty when compiled as closures only)."""

    def build(self, record: Any, *, request: Any = None) -> dict[str, Any]:
        """The target message as nested data, carried_as payloads still trees."""
        return self._build(Scope(record, record, request=request))

    def translate(self, record: Any, *, request: Any = None) -> dict[str, Any]:
        """The target message. Raises TranslateError (UnmappedCode, a bad date...) naming field and record path.

        `request`: for response mappings, the canonical record the request was translated from (the
        answer completes it: `{{ request.patient }}`)."""
        msg = self._build(Scope(record, record, request=request))
        return self._encode(msg) if self._encode is not None else msg

    def validate(self, message: Any, *, fill_supplied: bool = True) -> Result:
        """Run the target spec's validator on a translated message. With fill_supplied, fields the
        envelope supplies later get placeholder values first, so findings are about the mapping only."""
        body = self.target.body
        if body is None:
            raise ValueError(f"mapping {self.id}: target {self.target.ref} has no body to validate against")
        if fill_supplied and self.supplied and isinstance(message, dict):
            message = dict(message)
            for name in self.supplied:
                node = (body.node.children or {}).get(name)
                if node is not None and name not in message:
                    placeholder = sample(node, full=False, name=name)
                    message[name] = encode_value(node, placeholder) if node.carried_as else placeholder
        return body.validate(message)

    def __repr__(self) -> str:
        return f"Translator({self.id}: {self.source.key} -> {self.target.key})"

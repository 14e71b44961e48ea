"""The typed seams an extension implements, one per kind. Small on purpose: each is what the engine calls.

Every extension has a `settings` msgspec Struct (forbid_unknown_fields=True): the spec's settings
for it are decoded into that Struct when specs load (errors located at file:line like any spec
key), and `specbridge docs` renders its fields as the extension's settings table.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

if TYPE_CHECKING:
    from adapters.base import Inbound, Outbound
    from engine.crypto.envelope import Message
    from engine.spec.compiled import CompiledInterface
    from engine.spec.loader import PlatformSpec, SpecSet

KINDS = ("field_type", "check", "signer", "canonical", "envelope_step", "code_table", "transport")
"""Every kind of extension, in the order `specbridge plugins` and the docs list them."""

KIND_TITLES = {
    "field_type": "field type",
    "check": "check",
    "signer": "signer",
    "canonical": "canonical-string recipe",
    "envelope_step": "envelope step",
    "code_table": "code-table provider",
    "transport": "transport",
}


class NoSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """This extension takes no settings."""


class FieldType:
    """A value type a spec names in `type:` (`type: gbt7408_date`, settings in the field's `settings:`).

    `base` is what the value is on the wire (str, int, float or bool): the engine decodes and checks
    that (plus length, pattern, codes, checks), then calls `validate`. Subclass and override.
    """

    base: ClassVar[type] = str
    settings: ClassVar[type[msgspec.Struct]] = NoSettings
    sensitive: ClassVar[bool] = False
    """True for personal identifiers: findings never echo the value."""

    def validate(self, value: Any, settings: Any) -> str | None:
        """None when `value` (already of type `base`) is fine, else a short reason that does not echo it."""
        return None

    def json_schema(self, settings: Any) -> dict[str, Any]:
        """A JSON-Schema snippet for the docs (and editors)."""
        return {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}.get(self.base, "string")}

    def sample(self, settings: Any) -> Any:
        """A valid value, for generated samples and scaffolds; None: the engine makes one from `base`."""
        return None


Check = Callable[[str, Any], "str | None"]
"""A named value check (`checks: [luhn]`, or `checks: [{luhn: {settings}}]`): (value, settings) -> reason or None."""


class Signer:
    """A signature algorithm a crypto profile names in `signature.algorithm` (settings: `signature.settings`).

    The engine builds the canonical bytes (from `signature.inputs` and the canonical recipe) and calls
    `sign`; on the platform side it calls `verify`. The key is the value of `signature.key` (a shared
    secret) or, without one, `private_key` to sign and `public_key` to verify, each passed once through
    `load_key` when the profile compiles.
    """

    settings: ClassVar[type[msgspec.Struct]] = NoSettings

    def load_key(self, raw: str | bytes, *, private: bool, settings: Any) -> Any:
        """Parse key material once (a PEM, a hex key); the result is what sign/verify receive."""
        return raw

    def sign(self, data: bytes, key: Any, settings: Any) -> str:
        """The signature text as it travels."""
        raise NotImplementedError

    def verify(self, data: bytes, signature: str, key: Any, settings: Any) -> bool:
        """Whether `signature` is right for `data`. Default: recompute and compare in constant time."""
        return hmac.compare_digest(self.sign(data, key, settings).encode("utf-8"), signature.strip().encode("utf-8"))


CanonicalRecipe = Callable[[Mapping[str, str], bytes, Any], bytes]
"""A canonical-string recipe (`signature.canonical`): (named input values in order, body, settings) -> bytes to sign."""


class EnvelopeStep:
    """A named step of a crypto profile (`crypto.steps: [name, {name: {settings}}]`).

    Steps run on a request after the built-in envelope, signature and anti-replay when sealing, and
    before them (in reverse order) when opening. They change the Message in place (body, headers,
    params); raise a CryptoError subclass to refuse a message.
    """

    settings: ClassVar[type[msgspec.Struct]] = NoSettings

    def seal(self, message: Message, settings: Any) -> None:
        """Client side: change the outgoing request."""

    def open(self, message: Message, settings: Any) -> None:
        """Platform side: undo `seal` (and check what it added)."""


CodeTableProvider = Callable[[Any, Path], Mapping[str, str]]
"""A code-table provider (`provider:` in a code-table file): (settings, the file's directory) -> {code: label}."""


@dataclass(frozen=True, slots=True)
class InboundContext:
    """What an inbound transport is built from: the bridge source and the interface its messages follow."""

    source: str
    """The bridge source's name."""
    spec: str | None
    """The source's `spec:` (a qualified interface id), as written."""
    interface: CompiledInterface | None
    """That interface, compiled (None when the source names none, or none that is loaded)."""
    specset: SpecSet
    base_dir: Path
    """Relative paths in settings are relative to this (the bridge's working directory)."""


@dataclass(frozen=True, slots=True)
class OutboundContext:
    """What an outbound transport is built from: the bridge target."""

    target: str
    """The bridge target's name."""
    platform: PlatformSpec
    base_url: str


class Transport:
    """A transport by name: bridge sources choose it with `adapter:` (inbound half, settings in
    `settings:`), targets with `transport:` (outbound half, settings in `transport_settings:`).

    Each half returns an object following adapters.base.Inbound (`start(sink)`, `stop()`) or
    Outbound (`send(request)`, `close()`); `inbound` may be a coroutine. Override the halves you have.
    """

    settings: ClassVar[type[msgspec.Struct]] = NoSettings

    def inbound(self, ctx: InboundContext, settings: Any) -> Inbound | Awaitable[Inbound]:
        raise NotImplementedError

    def outbound(self, ctx: OutboundContext, settings: Any) -> Outbound:
        raise NotImplementedError

    @property
    def has_inbound(self) -> bool:
        return type(self).inbound is not Transport.inbound

    @property
    def has_outbound(self) -> bool:
        return type(self).outbound is not Transport.outbound

"""A misbehaving plugin: every extension here raises or answers the wrong type, on purpose."""

from __future__ import annotations

from typing import Any

from engine.plugins import FieldType, Plugin, Signer, Transport


class Explodes(Signer):
    """Raises while signing (a bug in a vendor's recipe)."""

    def sign(self, data: bytes, key: Any, settings: Any) -> str:
        raise ValueError("recipe table missing for this province")


class BytesSignature(Signer):
    """Returns bytes where the seam promises str."""

    def sign(self, data: bytes, key: Any, settings: Any) -> str:
        return b"\x01\x02"  # type: ignore[return-value]


def int_check(value: str, settings: Any) -> str | None:
    """Answers an int instead of a reason or None."""
    return 42  # type: ignore[return-value]


def raising_check(value: str, settings: Any) -> str | None:
    """Raises on every value."""
    raise KeyError("lookup table not loaded")


class Crashing(FieldType):
    """A type whose rule raises."""

    def validate(self, value: Any, settings: Any) -> str | None:
        raise ZeroDivisionError("division by zero")


def not_a_mapping(settings: Any, directory: Any) -> Any:
    """A code-table provider answering a list."""
    return ["01", "02"]


class BadSend(Transport):
    """An outbound half whose send raises something that is not a TransportError."""

    def outbound(self, ctx: Any, settings: Any) -> Any:
        class Out:
            async def send(self, request: Any) -> Any:
                raise RuntimeError("socket library crashed")

            async def close(self) -> None:
                return None

        return Out()


def register(plugin: Plugin) -> None:
    plugin.signer("explodes", Explodes())
    plugin.signer("bytes_sig", BytesSignature())
    plugin.check("int_check", int_check)
    plugin.check("raising_check", raising_check)
    plugin.field_type("crashing", Crashing())
    plugin.code_table("not_a_mapping", not_a_mapping)
    plugin.transport("bad_send", BadSend())


def register_half(plugin: Plugin) -> None:
    """Registers one extension, then fails: nothing of it may be kept."""
    plugin.check("half_check", int_check)
    raise RuntimeError("half-way failure in register()")

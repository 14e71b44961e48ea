"""Plugin failures: always named by plugin, kind and extension, never a traceback out of the engine."""

from __future__ import annotations

from engine.crypto.errors import CryptoError
from engine.errors import SpecbridgeError


def describe(exc: BaseException) -> str:
    """`ValueError: message` on one line, bounded: how a plugin's exception is named in reports."""
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class PluginError(SpecbridgeError):
    """A plugin is unusable as written: its register() raised, or it registered something malformed."""


class ExtensionError(SpecbridgeError):
    """An extension misbehaved while the engine used it: it raised, or returned the wrong type.

    The message names the plugin, the kind and the extension (`plugin `acme` signer `x` raised
    ValueError: ...`): the runtime journals it as the attempt's reason, the validator reports it
    as a `plugin` finding, the twin answers it as a refusal.
    """

    def __init__(self, message: str, *, plugin: str, kind: str, name: str) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.kind = kind
        self.name = name


class ExtensionCryptoError(ExtensionError, CryptoError):
    """An ExtensionError raised inside a crypto profile (a signer, a canonical recipe, an envelope step):
    callers that handle CryptoError (the twin's refusal, the response judge) handle it too."""

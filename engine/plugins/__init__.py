"""Plugins: named extensions for what a platform's YAML cannot say, found through entry points.

A plugin is a distribution that declares an entry point in the group `specbridge.plugins`:

    # pyproject.toml of the plugin
    [project.entry-points."specbridge.plugins"]
    acme = "acme_specbridge:register"      # a function taking a Plugin, or a module with register(plugin)

On first use the engine loads every entry point on sys.path (importlib.metadata), calls its
register function with a `Plugin`, and keeps what it registered in one registry
(`engine.plugins.current()`), beside the built-ins, which register through the same API as plugin
`specbridge` (engine/plugins/builtin.py). Specs then use an extension by name:

    def register(plugin: Plugin) -> None:
        plugin.field_type("gbt7408_date", Gbt7408Date())          # type: gbt7408_date  (+ settings: {...})
        plugin.check("ybk_card", ybk_card, settings=CardRule)      # checks: [ybk_card] or [{ybk_card: {...}}]
        plugin.signer("hmac_sm3_salted", SaltedHmacSm3())          # crypto.signature.algorithm (+ settings)
        plugin.canonical("sorted_query", sorted_query, settings=Q)  # crypto.signature.canonical (+ canonical_settings)
        plugin.envelope_step("stamp", Stamp())                     # crypto.steps: [stamp] or [{stamp: {...}}]
        plugin.code_table("gbt2260", regions, settings=Regions)    # a code-table file's provider (+ settings)
        plugin.transport("mq", MessageQueue())                     # bridge source `adapter:` / target `transport:`

The seams (engine.plugins.seams), one per kind, are small and typed:

- field type: a `FieldType` subclass: `base` (str, int, float or bool: what msgspec decodes and the
  engine's length/pattern/codes/checks apply to), `validate(value, settings) -> reason | None`,
  `json_schema(settings)` for the docs, optional `sample(settings)`, `sensitive`.
- check: a function `(value: str, settings) -> reason | None`.
- signer: a `Signer` subclass: `sign(canonical_bytes, key, settings) -> str`, `verify(canonical_bytes,
  signature, key, settings) -> bool`, optional `load_key(raw, private=, settings=)` run once at compile.
- canonical-string recipe: a function `(values: {name: str} in `inputs` order, body: bytes, settings) -> bytes`.
- envelope step: an `EnvelopeStep` subclass: `seal(message, settings)` / `open(message, settings)`
  change the engine.crypto.envelope.Message (body, headers, params) in place.
- code-table provider: a function `(settings, directory of the code-table file) -> {code: label}`.
- transport: a `Transport` subclass: `inbound(InboundContext, settings)` (may be async) returning an
  adapters.base.Inbound (`start(sink)`, `stop()`), `outbound(OutboundContext, settings)` returning
  an adapters.base.Outbound (`send(request)`, `close()`); implement either half or both.

Every extension declares its settings as a msgspec Struct with forbid_unknown_fields=True (`NoSettings`
when it takes none; classes set a `settings` class attribute, functions pass `settings=`). The spec's
settings are decoded into it when specs load, so `specbridge check` reports a bad setting at the spec's
file:line and key path, an unknown name as a finding naming the plugins that could provide it (a
platform lists the plugins it needs in platform.yaml `plugins:`), and `specbridge docs` documents the
extension (kind, plugin and version, docstring, settings table from the Struct and its field
docstrings). `specbridge plugins [--json]` lists every plugin, its version, entry point and extensions.

A complete, tested example of every kind: tests/plugins/sample_plugin (its pyproject.toml, its one module),
exercised by tests/plugins (fixture platform: tests/plugins/fixtures/specs/platforms/sample_province).

A plugin cannot break the engine: a register() that raises, or registers something malformed, loads
nothing and is reported with its name and the exception message (the other plugins still load); an
extension that raises or returns the wrong type at run time becomes an ExtensionError naming plugin,
kind and extension: a `plugin` finding when validating, a refusal in a twin, a DEAD message with that
reason in a bridge (other routes keep flowing). Raise a SpecbridgeError subclass (BadSignatureError,
TransportError...) to fail on purpose: it passes through unchanged.
"""

from engine.plugins.errors import ExtensionError, PluginError
from engine.plugins.registry import BUILTIN, GROUP, Extension, Plugin, PluginInfo, Registry, current, reset, using
from engine.plugins.seams import (
    KINDS,
    CanonicalRecipe,
    Check,
    CodeTableProvider,
    EnvelopeStep,
    FieldType,
    InboundContext,
    NoSettings,
    OutboundContext,
    Signer,
    Transport,
)

__all__ = [
    "BUILTIN",
    "GROUP",
    "KINDS",
    "CanonicalRecipe",
    "Check",
    "CodeTableProvider",
    "EnvelopeStep",
    "Extension",
    "ExtensionError",
    "FieldType",
    "InboundContext",
    "NoSettings",
    "OutboundContext",
    "Plugin",
    "PluginError",
    "PluginInfo",
    "Registry",
    "Signer",
    "Transport",
    "current",
    "reset",
    "using",
]

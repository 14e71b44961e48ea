"""How specs use extensions: settings decoded with file:line findings, extensions bound to their settings.

The resolver (field types, checks), the loader (code-table providers, crypto recipes) and the
crypto compiler all go through here, so every use of an extension is looked up and checked alike.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import Finding
from engine.plugins import guard
from engine.plugins.errors import ExtensionError
from engine.plugins.registry import Extension, Registry

if TYPE_CHECKING:
    from engine.crypto.profile import CryptoProfile
    from engine.spec.decode import SpecFile
    from engine.spec.model import CodeTable

BASE_KINDS: dict[type, str] = {str: "string", int: "int", float: "number", bool: "bool"}
"""The spec kind a plugin field type's base travels as."""

Used = set[tuple[str, str]]
"""(kind, name) of every extension a platform's specs use."""


def decode_settings(ext: Extension, raw: Any, *, strict: bool = True) -> Any:
    """`raw` (a mapping from a spec, or None) as ext's settings Struct. Raises msgspec.ValidationError.
    Not strict: text is accepted for numbers and booleans (bridge files, where `${VAR}` expands to text)."""
    return msgspec.convert({} if raw is None else raw, ext.settings, strict=strict)


def settings_message(ext: Extension, raw: Any, exc: msgspec.ValidationError, path: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], str]:
    """(where in the file, message) for bad settings, worded like any spec decoding error."""
    from engine.spec.decode import explain, human

    where, msg = explain(ext.settings, {} if raw is None else raw, exc)
    full = (*path, *where)
    return full, f"{msg} at {human(full)} (settings of {ext.label}; see `specbridge plugins`)"


def settings_or_finding(ext: Extension, raw: Any, sf: SpecFile, path: tuple[Any, ...]) -> tuple[Any, Finding | None]:
    try:
        return decode_settings(ext, raw), None
    except msgspec.ValidationError as exc:
        where, msg = settings_message(ext, raw, exc, path)
        return None, sf.finding(where, msg)


def ref(item: Any) -> tuple[str, Any] | None:
    """A reference to an extension in a list: `name`, or `{name: settings}`. None when malformed."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict) and len(item) == 1:
        name, raw = next(iter(item.items()))
        return str(name), raw
    return None


# -- field types and checks ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BoundType:
    """A plugin field type with its settings, as a Node carries it."""

    ext: Extension
    settings: Any

    @property
    def name(self) -> str:
        return self.ext.name

    @property
    def base(self) -> type:
        return self.ext.impl.base  # type: ignore[no-any-return]

    def validate(self, value: Any) -> str | None:
        """Reason or None; raises ExtensionError when the plugin raises or answers something else."""
        return guard.call(self.ext, self.ext.impl.validate, value, self.settings, returns=(str, type(None)),  # type: ignore[no-any-return]
                          what="validate")

    def sample(self) -> Any:
        try:
            return guard.call(self.ext, self.ext.impl.sample, self.settings, returns=(self.base, type(None)), what="sample")
        except ExtensionError:
            return None

    def json_schema(self) -> dict[str, Any]:
        try:
            return guard.call(self.ext, self.ext.impl.json_schema, self.settings, returns=dict, what="json_schema")  # type: ignore[no-any-return]
        except ExtensionError as exc:
            return {"description": str(exc)}


def bind_check(ext: Extension, settings: Any) -> Callable[[str], str | None]:
    """The check as the walker calls it: value -> reason or None (ExtensionError when a plugin misbehaves)."""
    fn = ext.impl
    if ext.builtin:
        return lambda v: fn(v, settings)  # type: ignore[no-any-return]
    what = f"checking a value ({ext.name})"
    return lambda v: guard.call(ext, fn, v, settings, returns=(str, type(None)), what=what)  # type: ignore[no-any-return]


# -- code tables -----------------------------------------------------------------------------------
def provide_codes(table: CodeTable, sf: SpecFile, reg: Registry, needs: Sequence[str] = ()) -> tuple[CodeTable, list[Finding]]:
    """A code table whose `provider:` fills its values (loaded once, when specs load)."""
    if table.provider is None:
        if table.settings is not None:
            return table, [sf.finding(("settings",), "`settings` without `provider`")]
        return table, []
    ext = reg.get("code_table", table.provider)
    if ext is None:
        return table, [sf.finding(("provider",), reg.missing("code_table", table.provider, needs))]
    if table.values:
        return table, [sf.finding(("values",), f"give `values` or `provider: {table.provider}`, not both")]
    settings, finding = settings_or_finding(ext, table.settings, sf, ("settings",))
    if finding is not None:
        return table, [finding]
    try:
        got = guard.call(ext, ext.impl, settings, Path(sf.path).parent, returns=dict, what="providing a code table")
        bad = next(((k, v) for k, v in got.items() if not isinstance(k, str) or not isinstance(v, str)), None)
        if bad is not None:
            raise ExtensionError(f"{ext.label} returned a code {bad[0]!r} -> {type(bad[1]).__name__}; codes and labels must be str",
                                 plugin=ext.plugin, kind=ext.kind, name=ext.name)
    except ExtensionError as exc:
        return table, [sf.finding(("provider",), f"code table `{table.id or sf.path.stem}`: {exc}")]
    except (OSError, ValueError, IndexError, csv.Error) as exc:  # a built-in provider's file problems
        return table, [sf.finding(("provider",), f"code table `{table.id or sf.path.stem}`: {guard.reason(exc)}")]
    return msgspec.structs.replace(table, values=dict(got)), []


# -- crypto profiles --------------------------------------------------------------------------------
def _signature_uses(sig: Any, base: tuple[Any, ...], sf: SpecFile, reg: Registry, needs: Sequence[str], used: Used) -> list[Finding]:
    signer = _named_use(reg, "signer", sig.algorithm, sig.settings, (*base, "algorithm"), (*base, "settings"), sf, needs, used,
                        f"signer `{sig.algorithm}` takes no `settings`: its options are this signature's own keys")
    cname = sig.canonical or "pairs"
    recipe = _named_use(reg, "canonical", cname, sig.canonical_settings, (*base, "canonical"), (*base, "canonical_settings"), sf, needs,
                        used, f"canonical recipe `{cname}` takes no settings: it reads this signature's sort, pair, joiner...")
    return signer + recipe


def _named_use(reg: Registry, kind: str, name: str, settings: Any, name_at: tuple[Any, ...], settings_at: tuple[Any, ...],
               sf: SpecFile, needs: Sequence[str], used: Used, builtin_takes_none: str) -> list[Finding]:
    """One extension a signature names: it must exist; a built-in takes its options from the signature's own
    keys (so `settings` there is a mistake), a plugin's settings are decoded against its schema."""
    used.add((kind, name))
    ext = reg.get(kind, name)
    if ext is None:
        return [sf.finding(name_at, reg.missing(kind, name, needs))]
    if ext.builtin:
        return [sf.finding(settings_at, builtin_takes_none)] if settings is not None else []
    _, finding = settings_or_finding(ext, settings, sf, settings_at)
    return [finding] if finding else []


def lint_crypto(profile: CryptoProfile | None, sf: SpecFile, reg: Registry, needs: Sequence[str] = ()) -> tuple[list[Finding], Used]:
    """Findings for a platform's `crypto:` extensions (signers, canonical recipes, steps) and what it names."""
    used: Used = set()
    if profile is None:
        return [], used
    out: list[Finding] = []
    if profile.signature is not None:
        out += _signature_uses(profile.signature, ("crypto", "signature"), sf, reg, needs, used)
    if profile.anti_replay is not None and profile.anti_replay.signature is not None:
        out += _signature_uses(profile.anti_replay.signature, ("crypto", "anti_replay", "signature"), sf, reg, needs, used)
    for i, item in enumerate(profile.steps or []):
        got = ref(item)
        if got is None:
            out.append(sf.finding(("crypto", "steps", i), "a step is a name or a one-key mapping {name: settings}"))
            continue
        name, raw = got
        ext = reg.get("envelope_step", name)
        used.add(("envelope_step", name))
        if ext is None:
            out.append(sf.finding(("crypto", "steps", i), reg.missing("envelope_step", name, needs)))
            continue
        _, finding = settings_or_finding(ext, raw, sf, ("crypto", "steps", i, name) if isinstance(item, dict) else ("crypto", "steps", i))
        out += [finding] if finding else []
    return out, used


def profile_settings(ext: Extension, raw: Any, where: str) -> Any:
    """Settings for a crypto extension at compile time (CryptoConfigError naming where, like the finding)."""
    from engine.crypto.errors import CryptoConfigError

    try:
        return decode_settings(ext, raw)
    except msgspec.ValidationError as exc:
        _, msg = settings_message(ext, raw, exc)
        raise CryptoConfigError(f"{where}: {msg}") from None

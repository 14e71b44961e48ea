"""Load a bridge file: decode with file:line findings, resolve secrets by reference."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from engine.bridge.model import Bridge
from engine.crypto.secrets import resolve_secrets
from engine.errors import Finding, SpecError
from engine.plugins.runtime import check_transports
from engine.runtime.query import check_sync_routes
from engine.spec.decode import decode_file
from engine.spec.loader import SpecSet
from engine.translate import MappingSet

_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")


def _expand(obj: Any, where: str, environ: Mapping[str, str]) -> Any:
    """`${NAME}` in any string takes the environment variable (deployment facts: URLs, directories).
    A missing variable is an error naming it: a bridge must not run half-configured."""
    if isinstance(obj, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in environ:
                raise SpecError([Finding(where, 1, f"environment variable {m.group(1)} is not set")])
            return environ[m.group(1)]

        return _VAR.sub(sub, obj)
    if isinstance(obj, dict):
        return {k: _expand(v, where, environ) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_expand(v, where, environ) for v in obj]
    return obj


def load_bridge(path: Path, environ: Mapping[str, str] | None = None) -> Bridge:
    bridge, _, findings = decode_file(path, str(path), Bridge)
    if bridge is None:
        raise SpecError(findings)
    raw = msgspec.to_builtins(bridge)
    return msgspec.convert(_expand(raw, str(path), os.environ if environ is None else environ), Bridge)


def check_bridge(bridge: Bridge, specset: SpecSet, path: str, mappings: MappingSet | None = None) -> list[Finding]:
    """Cross-references: every route's source, target, interface and platform exist; a query route
    (`reply: sync`) has one target, a source that waits, and (given mappings) a chain to answer with."""
    out: list[Finding] = []
    for tname, t in bridge.targets.items():
        if t.platform not in specset.platforms:
            out.append(Finding(path, 1, f"target `{tname}`: unknown platform `{t.platform}`"))
    for r in bridge.routes:
        if r.source not in bridge.sources:
            out.append(Finding(path, 1, f"route `{r.id}`: unknown source `{r.source}`"))
        for to in r.to:
            t = bridge.targets.get(to.target)
            if t is None:
                out.append(Finding(path, 1, f"route `{r.id}`: unknown target `{to.target}`"))
            elif t.platform in specset.platforms and to.interface not in specset.platforms[t.platform].interfaces:
                out.append(Finding(path, 1, f"route `{r.id}`: {t.platform} has no interface `{to.interface}`"))
    lease = bridge.journal.lease_s
    for tname, t in bridge.targets.items():
        if lease < 2 * t.timeout_s:
            out.append(Finding(path, 1, f"journal.lease_s {lease:g} is shorter than twice target `{tname}`'s timeout_s"
                                        f" {t.timeout_s:g}: a slow send could be claimed and sent again while it is under way"))
    out.extend(check_sync_routes(bridge, specset, path, mappings))
    out.extend(check_transports(bridge, path))
    return out


def secrets_of(bridge: Bridge, base_dir: Path) -> dict[str, Any]:
    return resolve_secrets(bridge.secrets, base_dir=base_dir)


def credentials_of(refs: dict[str, str], secrets: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Credential values: `secret:NAME` takes a bridge secret, `env:`/`file:` resolve directly."""
    direct = {k: v for k, v in refs.items() if not v.startswith("secret:")}
    out: dict[str, Any] = dict(resolve_secrets(direct, base_dir=base_dir)) if direct else {}
    for k, v in refs.items():
        if v.startswith("secret:"):
            out[k] = secrets[v.removeprefix("secret:")]
    return out

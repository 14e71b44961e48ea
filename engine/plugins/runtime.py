"""Transports by name for the runtime: a bridge source's inbound half, a target's outbound half, and
the bridge-file checks of both (unknown transport, bad settings: findings at the bridge file's line)."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.base import OutboundRequest, OutboundResponse
from engine.errors import Finding, SpecbridgeError, UnknownInterface
from engine.plugins import guard
from engine.plugins.errors import ExtensionError
from engine.plugins.registry import Extension, current
from engine.plugins.seams import InboundContext, OutboundContext
from engine.plugins.spec import decode_settings, settings_message

if TYPE_CHECKING:
    from adapters.base import Inbound, Outbound
    from engine.bridge.model import Bridge, Source, Target
    from engine.spec.loader import PlatformSpec, SpecSet

log = logging.getLogger("specbridge.plugins")


def _transport(name: str, half: str, who: str) -> Extension:
    reg = current()
    ext = reg.get("transport", name)
    if ext is None:
        raise SpecbridgeError(f"{who}: {reg.missing('transport', name)}")
    if not getattr(ext.impl, f"has_{half}"):
        raise SpecbridgeError(f"{who}: transport `{name}` ({ext.plugin}) has no {half} half")
    return ext


def _settings(ext: Extension, raw: Any, who: str) -> Any:
    try:
        return decode_settings(ext, raw, strict=False)
    except msgspec.ValidationError as exc:
        _, msg = settings_message(ext, raw, exc)
        raise SpecbridgeError(f"{who}: {msg}") from None


def _checked(ext: Extension, got: Any, methods: tuple[str, ...], what: str) -> Any:
    missing = [m for m in methods if not callable(getattr(got, m, None))]
    if missing:
        raise ExtensionError(f"{ext.label} returned a {type(got).__name__} from {what}, which lacks {', '.join(missing)}()",
                             plugin=ext.plugin, kind=ext.kind, name=ext.name)
    return got


async def open_inbound(src: Source, name: str, specset: SpecSet, base_dir: Path) -> Inbound:
    """A source's inbound half, built by the transport its `adapter:` names; not started yet."""
    who = f"source `{name}`"
    ext = _transport(src.adapter, "inbound", who)
    settings = _settings(ext, src.settings, who)
    try:
        iface = specset.interface(src.spec) if src.spec else None
    except UnknownInterface:
        iface = None
    ctx = InboundContext(name, src.spec, iface, specset, base_dir)
    got = guard.call(ext, ext.impl.inbound, ctx, settings, returns=object, what="inbound")
    if inspect.isawaitable(got):
        try:
            got = await got
        except SpecbridgeError:
            raise
        except Exception as exc:
            if ext.builtin:
                raise
            raise ExtensionError(f"{ext.label} raised {guard.reason(exc)} in inbound", plugin=ext.plugin, kind=ext.kind,
                                 name=ext.name) from None
    return _checked(ext, got, ("start", "stop"), "inbound")  # type: ignore[no-any-return]


def open_outbound(target: Target, name: str, platform: PlatformSpec) -> Outbound | None:
    """The outbound half a target's `transport:` names (None: the built-in choice per binding)."""
    if target.transport is None:
        return None
    who = f"target `{name}`"
    ext = _transport(target.transport, "outbound", who)
    settings = _settings(ext, target.transport_settings, who)
    got = guard.call(ext, ext.impl.outbound, OutboundContext(name, platform, target.base_url), settings, returns=object,
                     what="outbound")
    got = _checked(ext, got, ("send", "close"), "outbound")
    return got if ext.builtin else _GuardedOutbound(ext, got)


class _GuardedOutbound:
    """A plugin's outbound half: a TransportError stays retryable; anything else it raises, or an answer that
    is not an OutboundResponse, becomes an ExtensionError naming the plugin (the message goes DEAD)."""

    def __init__(self, ext: Extension, inner: Any) -> None:
        self.ext, self.inner = ext, inner

    async def send(self, request: OutboundRequest) -> OutboundResponse:
        ext = self.ext
        try:
            got = await self.inner.send(request)
        except SpecbridgeError:
            raise
        except Exception as exc:
            raise ExtensionError(f"{ext.label} raised {guard.reason(exc)} in send", plugin=ext.plugin, kind=ext.kind,
                                 name=ext.name) from None
        if not isinstance(got, OutboundResponse):
            raise ExtensionError(f"{ext.label} returned {type(got).__name__} from send, expected OutboundResponse",
                                 plugin=ext.plugin, kind=ext.kind, name=ext.name)
        return got

    async def close(self) -> None:
        try:
            await self.inner.close()
        except Exception as exc:  # closing must not stop the others from closing
            log.warning("%s raised %s in close", self.ext.label, guard.reason(exc))


def check_transports(bridge: Bridge, path: str) -> list[Finding]:
    """Every source's adapter and target's transport is installed, with the right half and valid settings."""
    from engine.spec.yamlsrc import YamlError, line_of, load_file

    try:
        _, pos = load_file(Path(path))
    except (OSError, UnicodeDecodeError, YamlError):  # no such file (a Bridge built in code): findings go to line 1
        pos = {}
    reg = current()
    out: list[Finding] = []

    def add(keys: tuple[Any, ...], msg: str) -> None:
        out.append(Finding(path, line_of(pos, keys) if pos else 1, msg))

    uses = [("sources", n, s.adapter, "inbound", "adapter", "settings", s.settings) for n, s in bridge.sources.items()]
    uses += [("targets", n, t.transport, "outbound", "transport", "transport_settings", t.transport_settings)
             for n, t in bridge.targets.items() if t.transport is not None]
    for section, name, tname, half, key, skey, raw in uses:
        who = f"{section[:-1]} `{name}`"
        ext = reg.get("transport", tname)
        if ext is None:
            add((section, name, key), f"{who}: {reg.missing('transport', tname)}")
        elif not getattr(ext.impl, f"has_{half}"):
            add((section, name, key), f"{who}: transport `{tname}` (plugin `{ext.plugin}`) has no {half} half")
        else:
            try:
                decode_settings(ext, raw, strict=False)
            except msgspec.ValidationError as exc:
                where, msg = settings_message(ext, raw, exc, (section, name, skey))
                add(where, f"{who}: {msg}")
    return out

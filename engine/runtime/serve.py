"""`specbridge run`: build sources from a bridge file, run until SIGINT/SIGTERM, stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import InboundMessage, Reply
from engine.bridge.model import Bridge
from engine.errors import SpecbridgeError, SpecError
from engine.runtime import loops, tuning
from engine.runtime.bridge import BridgeRuntime
from engine.runtime.config import check_bridge, load_bridge
from engine.spec import load_specs
from engine.spec.loader import SpecSet
from engine.translate import load_mappings

log = logging.getLogger("specbridge.runtime")


@dataclass
class Running:
    runtime: BridgeRuntime
    sources: dict[str, Any] = field(default_factory=dict)
    admin: Any = None

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.stop()
        for src in self.sources.values():
            with contextlib.suppress(Exception):
                await src.stop()
        await self.runtime.stop()


def _source_sink(runtime: BridgeRuntime, name: str) -> Any:
    """Records from a source: JSON bodies or decoded rows, DICOM key attributes plus the file."""
    base = runtime.sink_for(name)

    def flat(msg: InboundMessage) -> InboundMessage:
        if msg.attachments:
            att = msg.attachments[0]
            body = dict(msg.body) if not isinstance(msg.body, (bytes, bytearray)) else msgspec.json.decode(msg.body)
            if att.path is not None:
                body["file"] = {"path": str(att.path), "filename": att.filename, "content_type": att.content_type, "size": att.size}
            msg = InboundMessage(msg.interface, body, msg.headers, [], msg.meta)
        return msg

    async def sink(msg: InboundMessage) -> Reply:
        return await base(flat(msg))

    async def many(msgs: list[InboundMessage]) -> list[Reply | Exception]:
        return await base.many([flat(m) for m in msgs])  # type: ignore[attr-defined]

    sink.many = many  # type: ignore[attr-defined]  # see adapters.base.ManySink
    return sink


async def open_view(runtime: BridgeRuntime, name: str, base_dir: Path) -> Any:
    """A dbview source's poller and database (`.poller`, `.stop()`), set up as `run` polls it (`specbridge
    backfill` drains it once): the dbview transport's inbound half, not started."""
    from engine.plugins.runtime import open_inbound

    return await open_inbound(runtime.bridge.sources[name], name, runtime.specset, base_dir)


async def start_sources(runtime: BridgeRuntime, base_dir: Path, only: Collection[str] | None = None) -> dict[str, Any]:
    """Start the bridge's sources (`only` these: a reload restarts the ones whose settings changed), each
    through the transport its `adapter:` names in the extension registry (built-in or a plugin's)."""
    from engine.plugins.runtime import open_inbound

    started: dict[str, Any] = {}
    for name, src in runtime.bridge.sources.items():
        if only is not None and name not in only:
            continue
        inbound = await open_inbound(src, name, runtime.specset, base_dir)
        await inbound.start(_source_sink(runtime, name))
        started[name] = inbound
    return started


async def open_bridge(bridge_path: Path, specs_dir: Path, *, bridge: Bridge | None = None) -> tuple[BridgeRuntime, SpecSet]:
    specset = load_specs(specs_dir)
    mappings = load_mappings(specs_dir / "mappings", specset)
    bridge = bridge or load_bridge(bridge_path)
    findings = check_bridge(bridge, specset, str(bridge_path), mappings)
    if findings:
        raise SpecError(findings)
    return BridgeRuntime(bridge, specset, mappings, base_dir=Path.cwd(), specs_dir=specs_dir), specset


def explain_open_failure(exc: Exception) -> None:
    """Why a bridge did not open, one line per reason on stderr (`run`, `backfill`): a traceback here would be a bug."""
    if isinstance(exc, SpecError):
        for f in exc.findings:
            print(f, file=sys.stderr)
    else:
        print(f"specbridge: {exc}", file=sys.stderr)


async def serve_bridge(bridge_path: Path, specs_dir: Path, *, reload: bool = True, reload_interval_s: float = 1.0) -> int:
    try:
        runtime, _ = await open_bridge(bridge_path, specs_dir)
    except (SpecbridgeError, OSError) as exc:
        explain_open_failure(exc)
        return 2
    tuning.apply()
    try:
        await runtime.start()
        sources = await start_sources(runtime, Path.cwd())
    except (SpecbridgeError, OSError, KeyError) as exc:
        print(f"specbridge: cannot start bridge {runtime.bridge.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        await runtime.stop()
        return 2
    from engine.admin.app import start_admin

    try:
        admin = await start_admin(runtime, Path.cwd())
    except (SpecbridgeError, OSError) as exc:
        print(f"specbridge: cannot start the admin server: {exc}", file=sys.stderr)
        await Running(runtime, sources).stop()
        return 2
    running = Running(runtime, sources, admin)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from engine.runtime.reload import Reloader  # reload.py imports this module

    reloader = Reloader(runtime, bridge_path, specs_dir, sources, interval_s=reload_interval_s if reload else None)
    await reloader.start()
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    print(f"event loop: {loops.current()}", flush=True)
    if reload:
        print(f"watching {bridge_path} and {specs_dir}/ for changes (SIGHUP reloads too)", flush=True)
    for name, src in sources.items():
        port = getattr(src, "port", None)
        print(f"source {name}: {runtime.bridge.sources[name].adapter}" + (f" on 127.0.0.1:{port}" if port else ""), flush=True)
    if admin is not None:
        print(f"admin on {admin.url}: /metrics /health /ready, dashboard at /", flush=True)
    print(f"bridge {runtime.bridge.id} running; Ctrl-C stops it gracefully", flush=True)
    await stop.wait()
    await reloader.stop()
    await running.stop()
    return 0

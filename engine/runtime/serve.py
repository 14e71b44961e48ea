"""`specbridge run`: build sources from a bridge file, run until SIGINT/SIGTERM, stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import InboundMessage, Reply
from engine.bridge.model import Bridge
from engine.errors import SpecbridgeError, SpecError
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

    async def stop(self) -> None:
        for src in self.sources.values():
            with contextlib.suppress(Exception):
                await src.stop()
        await self.runtime.stop()


def _source_sink(runtime: BridgeRuntime, name: str) -> Any:
    """Records from a source: JSON bodies or decoded rows, DICOM key attributes plus the file."""
    base = runtime.sink_for(name)

    async def sink(msg: InboundMessage) -> Reply:
        if msg.attachments:
            att = msg.attachments[0]
            body = dict(msg.body) if not isinstance(msg.body, (bytes, bytearray)) else msgspec.json.decode(msg.body)
            if att.path is not None:
                body["file"] = {"path": str(att.path), "filename": att.filename, "content_type": att.content_type, "size": att.size}
            msg = InboundMessage(msg.interface, body, msg.headers, [], msg.meta)
        return await base(msg)

    return sink


@dataclass
class _PollerWithDb:
    """A view poller and the database connection opened for it: stopping one closes both, so no
    aiosqlite thread outlives the event loop."""

    poller: Any
    db: Any

    async def stop(self) -> None:
        try:
            await self.poller.stop()
        finally:
            await self.db.close()


async def start_sources(runtime: BridgeRuntime, base_dir: Path) -> dict[str, Any]:
    from adapters.dbview import ViewPoller
    from adapters.dicom import DicomScp
    from adapters.http_json import HttpInbound
    from adapters.sqlite_db import SqliteDatabase

    started: dict[str, Any] = {}
    for name, src in runtime.bridge.sources.items():
        s = src.settings
        sink = _source_sink(runtime, name)
        if src.adapter == "dbview":
            assert src.spec is not None
            ci = runtime.specset.interface(src.spec)
            db = await SqliteDatabase.open(base_dir / s["database"], readonly=True)
            state = base_dir / s.get("state", f"var/{name}.cursor.db")
            state.parent.mkdir(parents=True, exist_ok=True)
            poller = ViewPoller.for_interface(ci, db, state,
                                              interval_s=float(s.get("interval_s", 1.0)), group_by=s.get("group_by"),
                                              window=int(s.get("window", 1)))
            await poller.start(sink)
            started[name] = _PollerWithDb(poller, db)
        elif src.adapter == "dicom":
            scp = DicomScp(src.spec or f"dicom/{name}", base_dir / s.get("spool", f"var/{name}.spool"),
                           ae_title=s.get("ae_title", "SPECBRIDGE"), port=int(s.get("port", 0)))
            await scp.start(sink)
            started[name] = scp
        elif src.adapter in ("http_json", "soap", "form"):
            assert src.spec is not None
            pid = src.spec.partition("/")[0]
            inbound = HttpInbound(runtime.specset.platforms[pid], port=int(s.get("port", 0)))
            await inbound.start(sink)
            started[name] = inbound
        else:  # pragma: no cover - the bridge schema lists every adapter
            raise SpecbridgeError(f"source `{name}`: adapter {src.adapter} cannot be a source")
    return started


async def open_bridge(bridge_path: Path, specs_dir: Path, *, bridge: Bridge | None = None) -> tuple[BridgeRuntime, SpecSet]:
    specset = load_specs(specs_dir)
    mappings = load_mappings(specs_dir / "mappings", specset)
    bridge = bridge or load_bridge(bridge_path)
    findings = check_bridge(bridge, specset, str(bridge_path))
    if findings:
        raise SpecError(findings)
    return BridgeRuntime(bridge, specset, mappings, base_dir=Path.cwd()), specset


async def serve_bridge(bridge_path: Path, specs_dir: Path) -> int:
    try:
        runtime, _ = await open_bridge(bridge_path, specs_dir)
    except SpecError as exc:
        for f in exc.findings:
            print(f, file=sys.stderr)
        return 2
    except (SpecbridgeError, OSError) as exc:
        print(f"specbridge: {exc}", file=sys.stderr)
        return 2
    try:
        await runtime.start()
        sources = await start_sources(runtime, Path.cwd())
    except (SpecbridgeError, OSError, KeyError) as exc:
        print(f"specbridge: cannot start bridge {runtime.bridge.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        await runtime.stop()
        return 2
    running = Running(runtime, sources)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for name, src in sources.items():
        port = getattr(src, "port", None)
        print(f"source {name}: {runtime.bridge.sources[name].adapter}" + (f" on 127.0.0.1:{port}" if port else ""), flush=True)
    print(f"bridge {runtime.bridge.id} running; Ctrl-C stops it gracefully", flush=True)
    await stop.wait()
    await running.stop()
    return 0

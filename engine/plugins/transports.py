"""The built-in transports as extensions: what a bridge source's `adapter:` (and a target's `transport:`) names.

Each wraps an adapter of adapters/ behind the Transport seam, with its settings as a Struct, so a
bridge's `settings:` are checked like a plugin's (file:line, unknown keys rejected).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from adapters.base import Inbound, Outbound, Sink
from engine.errors import SpecbridgeError
from engine.plugins.registry import Plugin
from engine.plugins.seams import InboundContext, OutboundContext, Transport


class HttpSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Settings of the http_json, soap and form sources."""

    host: str = "127.0.0.1"
    """Listen address (loopback by default)."""
    port: int = 0
    """Listen port; 0 picks a free one (printed at start)."""


class DbviewSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Settings of a dbview source: the database holding the view and how it is polled."""

    database: str
    """SQLite file holding the view (relative to the working directory)."""
    state: str | None = None
    """Where the read cursor is kept (default var/<source>.cursor.db)."""
    interval_s: float = 1.0
    """Seconds between polls when the view has nothing new."""
    group_by: list[str] | None = None
    """Columns whose equal values make one message of several rows (a report's result lines)."""
    window: int = 1
    """Rows handed over at once: journalled in one call and one commit, two windows in flight; 1 keeps
    strict one-at-a-time order. bench/bridge.py measured 16 best of 8-64 on loopback."""


class DicomSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Settings of a DICOM C-STORE source."""

    ae_title: str = "SPECBRIDGE"
    port: int = 0
    spool: str | None = None
    """Where received instances are spooled (default var/<source>.spool)."""


def _platform_of(ctx: InboundContext, adapter: str) -> Any:
    spec = ctx.spec
    pid = (spec or "").partition("/")[0]
    if pid not in ctx.specset.platforms:
        raise SpecbridgeError(f"source `{ctx.source}`: adapter {adapter} needs `spec:` naming an interface of a loaded platform")
    return ctx.specset.platforms[pid]


class _Http(Transport):
    settings = HttpSettings

    def __init__(self, kind: str, doc: str) -> None:
        self.kind = kind
        self.__doc__ = doc

    def inbound(self, ctx: InboundContext, settings: HttpSettings) -> Inbound:
        from adapters.http_json import HttpInbound

        return HttpInbound(_platform_of(ctx, self.kind), host=settings.host, port=settings.port)

    def outbound(self, ctx: OutboundContext, settings: HttpSettings) -> Outbound:
        from adapters.http_json import HttpOutbound
        from adapters.soap import SoapOutbound

        if self.kind == "soap":
            return SoapOutbound(ctx.platform, ctx.base_url.rstrip("/") + (ctx.platform.platform.transport.base_path or ""))
        return HttpOutbound(ctx.platform, ctx.base_url)


class PollerWithDb:
    """A view poller and the database connection opened for it: stopping one closes both, so no
    aiosqlite thread outlives the event loop."""

    def __init__(self, poller: Any, db: Any) -> None:
        self.poller = poller
        self.db = db

    async def start(self, sink: Sink) -> None:
        try:
            await self.poller.start(sink)
        except BaseException:
            await self.db.close()
            raise

    async def stop(self) -> None:
        try:
            await self.poller.stop()
        finally:
            await self.db.close()


class Dbview(Transport):
    """Polls a database view (the spec's `binding.view`) past a durable cursor; one message per row or group."""

    settings = DbviewSettings

    async def inbound(self, ctx: InboundContext, settings: DbviewSettings) -> Inbound:
        from adapters.dbview import ViewPoller
        from adapters.sqlite_db import SqliteDatabase

        if ctx.spec is None:
            raise SpecbridgeError(f"source `{ctx.source}`: adapter dbview needs `spec:` naming the view's interface")
        ci = ctx.interface or ctx.specset.interface(ctx.spec)  # raises UnknownInterface naming it
        db = await SqliteDatabase.open(ctx.base_dir / settings.database, readonly=True)
        try:
            state = ctx.base_dir / (settings.state or f"var/{ctx.source}.cursor.db")
            state.parent.mkdir(parents=True, exist_ok=True)
            poller = ViewPoller.for_interface(ci, db, state, interval_s=settings.interval_s, group_by=settings.group_by,
                                              window=settings.window)
        except BaseException:
            await db.close()
            raise
        return PollerWithDb(poller, db)


class Dicom(Transport):
    """A DICOM C-STORE SCP: each received instance (its key attributes plus the spooled file) is one message."""

    settings = DicomSettings

    def inbound(self, ctx: InboundContext, settings: DicomSettings) -> Inbound:
        from adapters.dicom import DicomScp

        spool = ctx.base_dir / Path(settings.spool or f"var/{ctx.source}.spool")
        return DicomScp(ctx.spec or f"dicom/{ctx.source}", spool, ae_title=settings.ae_title, port=settings.port)


def register_transports(plugin: Plugin) -> None:
    plugin.transport("http_json", _Http("http_json", "JSON over HTTP: a platform's HTTP routes (and its SOAP service, if any)."))
    plugin.transport("soap", _Http("soap", "SOAP 1.1/1.2 with a WSDL generated from the spec (inbound served with the HTTP routes)."))
    plugin.transport("form", _Http("form", "Form and multipart posts over HTTP (served with the HTTP routes)."))
    plugin.transport("dbview", Dbview())
    plugin.transport("dicom", Dicom())

"""Serving glue: a PlatformTwin mounted on the transport adapters, plus the `/__twin__/` controls.

HTTP interfaces go through adapters.http_json.HttpRoutes with validation off (the twin validates
after its token check and decryption, in the platform's order); a SOAP service goes through
adapters.soap.SoapRoutes, which validates the (unwrapped) parameters itself and hands the twin
the plaintext. Controls, for tests and the demo:

    GET  /__twin__/stats            deliveries per interface and natural key, errors, injections
    GET  /__twin__/secrets          what a client needs for this twin's crypto (public keys, shared secrets)
    POST /__twin__/reset            forget records, counters and tokens
    POST /__twin__/advance?seconds=N move the twin's clock (token lifetimes, lock-outs, caps)
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.base import InboundMessage, Reply
from adapters.http_json import HttpRoutes
from adapters.http_limits import Limits
from adapters.server import start_app
from adapters.soap import SoapRoutes, has_soap
from engine.spec.loader import SpecSet, load_specs
from engine.twin.core import PlatformTwin, TwinConfigError, TwinOptions, TwinRequest

_QUERY: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("twin_query", default=None)
_SESSION: contextvars.ContextVar[Any] = contextvars.ContextVar("twin_session", default=None)


@web.middleware
async def _capture_query(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """The adapters' form reader reads bodies only; a GET's query string (city_lab_mr's token call)
    reaches the twin through this context variable. To move into HttpRoutes: GET + form = query."""
    token = _QUERY.set(dict(request.query))
    try:
        return await handler(request)
    finally:
        _QUERY.reset(token)


def build_app(twin: PlatformTwin, specset: SpecSet | None = None, *, limits: Limits | None = None) -> web.Application:
    """The twin's aiohttp app: its platform's HTTP routes and SOAP service, and the controls."""

    async def sink(msg: InboundMessage) -> Reply:
        transport = msg.meta.get("transport", "http")
        req = TwinRequest(
            msg.interface.rpartition("/")[2],
            msg.body,
            msg.headers,
            msg.attachments,
            "soap" if transport == "soap" else "http",
            method=msg.meta.get("method", "POST"),
            query=_QUERY.get() or {},
            plaintext=msg.meta.get("plaintext"),
            session=_SESSION.get() if transport == "soap" else None,
        )
        reply = twin.handle(req)
        if twin.options.answer_delay_s > 0:
            await asyncio.sleep(twin.options.answer_delay_s)
        return reply

    async def unwrap(_operation: str, params: Mapping[str, str]) -> Mapping[str, str]:
        plain, session = twin.unwrap(params)
        _SESSION.set(session)  # awaited in the handler's own task: the sink sees it
        return plain

    routes = HttpRoutes(twin.ps, sink, limits=limits, validate=False)
    app = web.Application(client_max_size=routes.max_limit + 65536, middlewares=[_capture_query])
    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(twin.stats())

    async def reset(_request: web.Request) -> web.Response:
        twin.reset()
        return web.json_response({"reset": True})

    async def advance(request: web.Request) -> web.Response:
        try:
            seconds = float(request.query.get("seconds", "0"))
        except ValueError:
            return web.json_response({"error": "seconds must be a number"}, status=400)
        twin.advance(seconds)
        return web.json_response({"advanced": seconds})

    async def secrets(_request: web.Request) -> web.Response:
        return web.json_response(twin.client_secrets_text())

    app.router.add_get("/__twin__/stats", stats)
    app.router.add_post("/__twin__/reset", reset)
    app.router.add_post("/__twin__/advance", advance)
    app.router.add_get("/__twin__/secrets", secrets)
    routes.add_to(app)
    if has_soap(twin.ps):
        soap = SoapRoutes(
            twin.ps,
            sink,
            limits=limits,
            validate=True,
            common_groups=specset.common_groups if specset is not None else None,
            unwrap=unwrap if twin.crypto is not None else None,
        )
        soap.add_to(app)
    return app


@dataclass(eq=False)
class RunningTwin:
    """A twin listening on loopback: `url`, `stats()`, and the PlatformTwin itself as `twin`."""

    twin: PlatformTwin
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stats(self) -> dict[str, Any]:
        return self.twin.stats()

    def reset(self) -> None:
        self.twin.reset()

    def advance(self, seconds: float) -> None:
        self.twin.advance(seconds)

    def soap_url(self) -> str | None:
        """The SOAP service address (WSDL at `?wsdl`), if the platform has one."""
        t = self.twin.ps.platform.transport
        if not has_soap(self.twin.ps):
            return None
        return self.url + (t.base_path or f"/services/{t.soap_service}")

    async def stop(self) -> None:
        await self.runner.cleanup()
        self.twin.close()


def _specset(specs: SpecSet | str | Path) -> SpecSet:
    return specs if isinstance(specs, SpecSet) else load_specs(Path(specs), strict=False)


async def serve_twin(
    specs: SpecSet | str | Path, platform_id: str, *, host: str = "127.0.0.1", port: int = 0,
    options: TwinOptions | None = None, limits: Limits | None = None, **kw: Any,
) -> RunningTwin:
    """Start a twin (stop it with `await running.stop()`); `kw` are TwinOptions fields."""
    specset = _specset(specs)
    ps = specset.platforms.get(platform_id)
    if ps is None:
        raise TwinConfigError(f"unknown platform `{platform_id}` (known: {', '.join(sorted(specset.platforms))})")
    twin = PlatformTwin(ps, options or TwinOptions(**kw))
    runner, bound = await start_app(build_app(twin, specset, limits=limits), host, port)
    return RunningTwin(twin, runner, host, bound)


@asynccontextmanager
async def start_twin(
    specs: SpecSet | str | Path, platform_id: str, *, host: str = "127.0.0.1", port: int = 0,
    options: TwinOptions | None = None, limits: Limits | None = None, **kw: Any,
) -> AsyncIterator[RunningTwin]:
    """`async with start_twin(specset, "jilin_imaging", fail_every=10) as t: t.url, t.stats()`."""
    running = await serve_twin(specs, platform_id, host=host, port=port, options=options, limits=limits, **kw)
    try:
        yield running
    finally:
        await running.stop()

"""HTTP inbound routes generated from a platform's specs, and the outbound HTTP client.

Inbound: every interface with `binding.http` becomes an aiohttp route (path and method from the
binding). The body is read under the route's size limit and read deadline, the envelope headers
and body are validated with the CompiledInterface, and a valid message goes to the Sink. Bad
input is answered in the platform's own error format (ReplyBuilder) with a reason naming the
field. JSON bodies are handled here, urlencoded and multipart bodies by `adapters.form`, and a
platform's SOAP service (`adapters.soap`) is mounted on the same app.

Outbound: `HttpOutbound.send` posts one prepared request to the interface's path with its fixed
headers (wedoctor `service`), over a pooled session per target.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import _default_expect_handler

from adapters.base import InboundMessage, OutboundRequest, OutboundResponse, Reply, Sink
from adapters.form import Budget, file_limits, form_data, read_multipart, read_urlencoded
from adapters.http_client import SessionPool, fetch
from adapters.http_limits import Limits, Refusal, read_body, request_limit
from adapters.reply import ReplyBuilder, reason_of
from adapters.server import start_app
from engine.errors import UnknownInterface
from engine.spec.compiled import CompiledInterface, Result
from engine.spec.loader import PlatformSpec
from engine.spec.validate import Issue

log = logging.getLogger("specbridge.adapters")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def respond(reply: Reply) -> web.Response:
    headers = {**reply.headers, hdrs.CONTENT_TYPE: reply.content_type}
    return web.Response(body=reply.body, status=reply.status, headers=headers)


_HEADER_CACHE = 1024


@dataclass(eq=False)
class _Route:
    iface: CompiledInterface
    replies: ReplyBuilder
    limit: int
    fmt: str
    """Request body format: json, form, multipart, text... or `none` (no body, e.g. GET)."""
    _names: tuple[str, ...] = ()
    _seen: dict[tuple[str | None, ...], tuple[list[Issue], list[Issue]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hdr = self.iface.headers
        self._names = (*((hdr.node.children or {}) if hdr else ()), *(self.iface.fixed_headers or {}))

    def accepts(self, headers: Mapping[str, str]) -> bool:
        fixed = self.iface.fixed_headers or {}
        return all(headers.get(k) == v for k, v in fixed.items())

    def check(self, body: Any, headers: Mapping[str, str]) -> Result:
        """validate_request(body, headers), with the header findings remembered per distinct header values.

        Envelope headers repeat from request to request (the same token for hours); their findings
        depend on nothing else, so walking them once per distinct set keeps validation on the hot path cheap.
        """
        iface = self.iface
        assert iface.request is not None
        if iface.headers is None:
            return iface.validate_request(body)
        key = tuple(headers.get(n) for n in self._names)
        seen = self._seen.get(key)
        if seen is None:
            res = iface.validate_request(body, headers)
            if len(self._seen) >= _HEADER_CACHE:
                self._seen.clear()
            self._seen[key] = (
                [i for i in res.errors if i.path.startswith("headers")],
                [i for i in res.warnings if i.path.startswith("headers")],
            )
            return res
        res = iface.request.validate(body)
        if seen[0] or seen[1]:
            res.errors[:0] = seen[0]
            res.warnings[:0] = seen[1]
        return res


class HttpRoutes:
    """The HTTP routes of one platform, bound to a Sink."""

    def __init__(
        self, platform: PlatformSpec, sink: Sink, *, limits: Limits | None = None, validate: bool = True, spool_dir: str | None = None
    ) -> None:
        self.platform = platform
        self.sink = sink
        self.limits = limits or Limits()
        self.validate = validate
        self.spool_dir = spool_dir
        self.table: dict[tuple[str, str], list[_Route]] = {}
        for iface in platform.interfaces.values():
            http = iface.spec.binding.http if iface.spec.binding else None
            if http is None:
                continue
            fmt = iface.request.format if iface.request is not None else "none"
            route = _Route(iface, ReplyBuilder(iface), request_limit(iface, self.limits.max_request_bytes), fmt)
            self.table.setdefault((http.method, http.path), []).append(route)

    @property
    def max_limit(self) -> int:
        return max((r.limit for rs in self.table.values() for r in rs), default=self.limits.max_request_bytes)

    def add_to(self, app: web.Application) -> None:
        for (method, path), routes in self.table.items():
            app.router.add_route(method, path, self._handler(routes), expect_handler=self._expect(routes))

    def _expect(self, routes: list[_Route]) -> Callable[[web.Request], Awaitable[web.StreamResponse | None]]:
        """Refuse an oversize body before `100 Continue` invites the client to send it."""
        limit = max(r.limit for r in routes)

        async def expect(request: web.Request) -> web.StreamResponse | None:
            cl = request.content_length
            if cl is not None and cl > limit:
                route = self._pick(routes, request)
                reason = f"request body of {cl} bytes exceeds the limit of {limit} bytes"
                return respond(route.replies.refuse(reason, rule="size", status=413))
            return await _default_expect_handler(request)

        return expect

    @staticmethod
    def _pick(routes: list[_Route], request: web.Request) -> _Route:
        if len(routes) == 1:
            return routes[0]
        return next((r for r in routes if r.accepts(request.headers)), routes[0])

    def _handler(self, routes: list[_Route]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            route = self._pick(routes, request)
            if route.fmt in ("form", "multipart"):
                return await self._form(route, request)
            return await self._plain(route, request)

        return handle

    async def _plain(self, route: _Route, request: web.Request) -> web.StreamResponse:
        iface, lim = route.iface, self.limits
        body: bytes | dict[str, Any]
        try:
            if request.method == "GET":
                body = dict(request.query)
            else:
                body = await read_body(request, route.limit, lim.read_timeout_s)
        except Refusal as r:
            return respond(route.replies.refuse(r.reason, rule=r.rule, path=r.path, status=r.status))
        if self.validate and iface.request is not None:
            res = route.check(body, request.headers)
            if not res.valid:
                first = res.errors[0]
                return respond(route.replies.refuse(reason_of(res.errors), rule=first.rule, path=first.path))
        return await self._deliver(route, InboundMessage(iface.qualified_id, body, request.headers, meta=_meta(request)))

    async def _form(self, route: _Route, request: web.Request) -> web.StreamResponse:
        iface, lim = route.iface, self.limits
        try:
            if route.fmt == "multipart":
                budget = Budget(route.limit, file_limits(iface.request.node if iface.request else None))
                payload = await read_multipart(
                    request, budget, timeout_s=lim.read_timeout_s, spool_bytes=lim.spool_bytes, spool_dir=self.spool_dir
                )
            else:
                payload = await read_urlencoded(request, route.limit, timeout_s=lim.read_timeout_s)
        except Refusal as r:
            return respond(route.replies.refuse(r.reason, rule=r.rule, path=r.path, status=r.status))
        try:
            if self.validate and iface.request is not None:
                res = route.check(payload.value(), request.headers)
                if not res.valid:
                    first = res.errors[0]
                    return respond(route.replies.refuse(reason_of(res.errors), rule=first.rule, path=first.path))
            msg = InboundMessage(iface.qualified_id, payload.fields, request.headers, payload.attachments, _meta(request))
            return await self._deliver(route, msg)
        finally:
            payload.cleanup()  # spooled parts are the sink's to copy or move before it returns

    async def _deliver(self, route: _Route, msg: InboundMessage) -> web.StreamResponse:
        try:
            reply = await self.sink(msg)
        except Exception:
            log.exception("sink failed on %s", route.iface.qualified_id)
            return respond(route.replies.error("internal error while handling the request", kind="internal", status=500))
        return respond(reply)


def _meta(request: web.Request) -> dict[str, Any]:
    return {"peer": request.remote, "method": request.method, "path": request.path, "transport": "http"}


class HttpInbound:
    """A platform's inbound side: its HTTP routes and (if it has one) its SOAP service on one app."""

    def __init__(
        self,
        platform: PlatformSpec,
        *,
        limits: Limits | None = None,
        validate: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        spool_dir: str | None = None,
        common_groups: Mapping[str, Any] | None = None,
        unwrap: Any = None,
    ) -> None:
        self.platform = platform
        self.limits = limits or Limits()
        self.validate = validate
        self.host, self.port = host, port
        self.spool_dir = spool_dir
        self.common_groups = common_groups
        self.unwrap = unwrap
        self._runner: web.AppRunner | None = None

    def app(self, sink: Sink) -> web.Application:
        from adapters.soap import SoapRoutes, has_soap

        routes = HttpRoutes(self.platform, sink, limits=self.limits, validate=self.validate, spool_dir=self.spool_dir)
        app = web.Application(client_max_size=routes.max_limit + 65536)
        routes.add_to(app)
        if has_soap(self.platform):
            soap = SoapRoutes(
                self.platform, sink, limits=self.limits, validate=self.validate, common_groups=self.common_groups, unwrap=self.unwrap
            )
            soap.add_to(app)
        return app

    async def start(self, sink: Sink) -> None:
        self._runner, self.port = await start_app(self.app(sink), self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@dataclass(frozen=True, slots=True)
class _Out:
    """One interface's outbound HTTP route: what every request of it repeats."""

    method: str
    url: str
    kind: str
    """How the request carries the message: `body` (as prepared), `params` (GET), `form` or `multipart`."""
    headers: dict[str, str]
    """The binding's fixed headers."""
    content_type: str
    """For a `body` request that names none."""


class HttpOutbound:
    """Sends prepared requests of one platform's HTTP interfaces to one target base URL."""

    def __init__(self, platform: PlatformSpec, base_url: str, *, pool: SessionPool | None = None, limits: Limits | None = None) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self._own = pool is None
        self.pool = pool or SessionPool(limits)
        self._routes: dict[str, _Out] = {}

    def _route(self, interface: str) -> _Out:
        """How requests of `interface` go out, worked out on its first request."""
        iface = self.platform.interfaces.get(interface.rpartition("/")[2])
        http = iface.spec.binding.http if iface is not None and iface.spec.binding else None
        if iface is None or http is None:
            raise UnknownInterface(f"{interface} has no HTTP binding on platform {self.platform.id}")
        fmt = iface.request.format if iface.request is not None else "none"
        kind = "params" if http.method == "GET" else fmt if fmt in ("form", "multipart") else "body"
        route = self._routes[interface] = _Out(http.method, self.base_url + http.path, kind, dict(iface.fixed_headers or {}),
                                               http.content_type or "application/json; charset=utf-8")
        return route

    async def send(self, request: OutboundRequest) -> OutboundResponse:
        route = self._routes.get(request.interface) or self._route(request.interface)
        headers = {**route.headers, **request.headers}
        data: Any = None
        params: Mapping[str, str] | None = None
        if route.kind == "body":
            data = request.body
            headers.setdefault(hdrs.CONTENT_TYPE, route.content_type)
        elif route.kind == "params":
            params = request.params
        else:
            data = form_data(request, multipart=route.kind == "multipart")
        return await fetch(self.pool, route.method, route.url, data=data, headers=headers, params=params, timeout_s=request.timeout_s)

    async def close(self) -> None:
        if self._own:
            await self.pool.close()

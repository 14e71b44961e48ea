"""The admin server: one aiohttp app per bridge runtime, loopback by default.

Open to anyone who can reach it (Prometheus convention): /metrics, /health, /ready and the
dashboard's static files (which hold no data). Behind the bearer token: everything under /api/.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.aiohttp import make_aiohttp_handler

from engine.admin import api
from engine.admin.auth import authorized, resolve_token
from engine.runtime.bridge import BridgeRuntime

log = logging.getLogger("specbridge.admin")

STATIC = Path(__file__).parent / "static"
TOKEN = web.AppKey("token", str)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Token check for /api/, and JSON errors instead of tracebacks for everything."""
    resource = request.match_info.route.resource
    if request.path.startswith("/api/") or (resource is not None and resource.canonical.startswith("/api/")):
        token = request.app.get(TOKEN)
        if not token:
            return api.error(403, "the admin API is off: set admin.token in the bridge file")
        if not authorized(request, token):
            resp = api.error(401, "missing or wrong bearer token (Authorization: Bearer ...)")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="specbridge"'
            return resp
    try:
        return await handler(request)
    except api.BadRequest as exc:
        return api.error(400, exc.message, field=exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return api.error(exc.status, exc.reason)
    except Exception:
        log.exception("admin request %s %s failed", request.method, request.path)  # headers (the token) are not logged
        return api.error(500, "internal error; the bridge's log has the details")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)


async def health(request: web.Request) -> web.Response:
    """The process answers: liveness. Nothing else is checked, so a restart is never triggered by a slow platform."""
    return api.json_response({"status": "ok", "bridge": request.app[api.RUNTIME].bridge.id})


async def ready(request: web.Request) -> web.Response:
    """Journal open, every delivery loop running, not stopping: safe to send records to."""
    reason = request.app[api.RUNTIME].not_ready()
    if reason is not None:
        return api.json_response({"ready": False, "reason": reason}, 503)
    return api.json_response({"ready": True})


def make_app(runtime: BridgeRuntime, token: str | None, *, ttl_s: float = 5.0) -> web.Application:
    """The admin app for a runtime. token None: the API answers 403 (metrics and probes still work)."""
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    live = runtime.metrics.attach(runtime, ttl_s)
    app[api.RUNTIME] = runtime
    app[api.LIVE] = live
    if token:
        app[TOKEN] = token
    scrape = make_aiohttp_handler(runtime.metrics.registry)

    async def metrics(request: web.Request) -> web.Response:
        await live.refresh()
        return await scrape(request)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    api.add_routes(app)
    app.on_response_prepare.append(_headers)
    return app


class AdminServer:
    """The admin app listening on host:port (0: a free port; `url` tells which)."""

    def __init__(self, runtime: BridgeRuntime, *, token: str | None, host: str = "127.0.0.1", port: int = 0, ttl_s: float = 5.0) -> None:
        self.app = make_app(runtime, token, ttl_s=ttl_s)
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> AdminServer:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def start_admin(runtime: BridgeRuntime, base_dir: Path) -> AdminServer | None:
    """Start the server the bridge file's `admin:` section asks for (None when it has none)."""
    cfg = runtime.bridge.admin
    if cfg is None:
        return None
    token = resolve_token(cfg.token, base_dir)
    if not is_loopback(cfg.host):
        log.warning("admin server listens on %s, beyond loopback: keep it behind a firewall or a TLS proxy", cfg.host)
    return await AdminServer(runtime, token=token, host=cfg.host, port=cfg.port).start()

"""Start an aiohttp app on loopback with an ephemeral port: for tests, twins and the bridge.

The runner settings are the hardening every inbound route relies on: a short lingering time
(an unread body of a refused request is not drained for long) and a bounded keep-alive.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def start_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0, *, lingering_s: float = 1.0, keepalive_s: float = 15.0, **kw: Any
) -> tuple[web.AppRunner, int]:
    """Serve `app`; returns the runner (await runner.cleanup() to stop) and the bound port."""
    runner = web.AppRunner(app, access_log=None, lingering_time=lingering_s, keepalive_timeout=keepalive_s, **kw)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    return runner, int(sockets[0].getsockname()[1])

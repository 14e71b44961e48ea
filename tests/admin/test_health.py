"""/health and /ready through a runtime's life: not started, running, a delivery loop lost, stopping."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from engine.admin.app import AdminServer
from engine.runtime.bridge import BridgeRuntime
from tests.admin.conftest import Env


async def get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        return resp.status, await resp.json()


async def test_ready_follows_the_runtime_from_start_to_stop(env: Env, specset, mappings, tmp_path) -> None:
    rt = BridgeRuntime(env.rt.bridge, specset, mappings, base_dir=tmp_path / "second")
    admin = await AdminServer(rt, token=None).start()
    try:
        assert await get(admin.url + "/health") == (200, {"status": "ok", "bridge": "admin-test"})
        assert await get(admin.url + "/ready") == (503, {"ready": False, "reason": "journal not open"})
        await rt.start()
        assert await get(admin.url + "/ready") == (200, {"ready": True})
        await rt.stop()
        assert await get(admin.url + "/ready") == (503, {"ready": False, "reason": "stopping"})
        assert (await get(admin.url + "/health"))[0] == 200  # alive, just not ready
    finally:
        await admin.stop()


async def test_a_dead_delivery_loop_makes_the_bridge_unready(env: Env) -> None:
    assert await get(env.url + "/ready") == (200, {"ready": True})
    loop = env.rt._loops["jilin"]
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    status, body = await get(env.url + "/ready")
    assert status == 503 and body == {"ready": False, "reason": "delivery loop not running: jilin"}

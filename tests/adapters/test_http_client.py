"""fetch: the response size limit holds however the body comes (declared length, chunked, compressed).

A real aiohttp server on loopback answers each path in its own way; the client reads with a small limit.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from adapters.base import TransportError
from adapters.http_client import SessionPool, fetch
from adapters.http_limits import Limits
from adapters.server import start_app

LIMIT = 1000


async def exact(request: web.Request) -> web.Response:
    return web.Response(body=b"a" * LIMIT, headers={"X-Code": "0"})


async def declared_over(request: web.Request) -> web.Response:
    return web.Response(body=b"b" * (LIMIT + 1))


async def chunked(request: web.Request) -> web.StreamResponse:
    """No length declared: the client only finds out while reading."""
    n = int(request.query["n"])
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for _ in range(n // 100):
        await resp.write(b"c" * 100)
    await resp.write_eof()
    return resp


async def gzipped(request: web.Request) -> web.Response:
    """A small body on the wire (its Content-Length is under the limit) that inflates past it."""
    n = int(request.query["n"])
    return web.Response(body=gzip.compress(b"d" * n), headers={"Content-Encoding": "gzip"})


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(0.3)
    return web.Response(body=b"late")


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in {"/exact": exact, "/over": declared_over, "/chunked": chunked, "/gzip": gzipped, "/slow": slow}.items():
        app.router.add_get(path, handler)
    runner, port = await start_app(app)
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_a_body_is_read_whole_up_to_the_limit_however_it_comes(base: str) -> None:
    pool = SessionPool(Limits(max_response_bytes=LIMIT))
    try:
        resp = await fetch(pool, "GET", f"{base}/exact")
        assert resp.status == 200 and resp.body == b"a" * LIMIT and resp.headers["X-Code"] == "0"
        assert (await fetch(pool, "GET", f"{base}/chunked", params={"n": str(LIMIT)})).body == b"c" * LIMIT
        assert (await fetch(pool, "GET", f"{base}/gzip", params={"n": str(LIMIT)})).body == b"d" * LIMIT
        again = await fetch(pool, "GET", f"{base}/exact")  # the parsed URL and the session are reused
        assert again.body == resp.body and len(pool._sessions) == 1
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("/over", None, f"response of {LIMIT + 1} bytes exceeds the limit of {LIMIT} bytes"),
        ("/chunked", {"n": str(LIMIT + 100)}, f"response exceeds the limit of {LIMIT} bytes"),
        ("/gzip", {"n": str(LIMIT * 50)}, f"response exceeds the limit of {LIMIT} bytes"),
    ],
)
async def test_a_body_over_the_limit_is_a_transport_error(base: str, path: str, params: dict[str, str] | None, reason: str) -> None:
    pool = SessionPool(Limits(max_response_bytes=LIMIT))
    try:
        with pytest.raises(TransportError, match=reason):
            await fetch(pool, "GET", f"{base}{path}", params=params)
    finally:
        await pool.close()


async def test_each_request_keeps_its_own_timeout(base: str) -> None:
    pool = SessionPool()
    try:
        with pytest.raises(TransportError, match=r"no complete answer within 0\.05 s"):
            await fetch(pool, "GET", f"{base}/slow", timeout_s=0.05)
        assert (await fetch(pool, "GET", f"{base}/slow", timeout_s=5)).body == b"late"
    finally:
        await pool.close()

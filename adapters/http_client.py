"""Outbound HTTP plumbing shared by the JSON, form and SOAP clients.

One pooled `ClientSession` per target origin (connections are reused across messages and
capped per host), a timeout per request, and a response size limit enforced while reading.
Anything that keeps the bytes from getting there or back is a `TransportError`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from adapters.base import OutboundResponse, TransportError
from adapters.http_limits import Limits


class SessionPool:
    """ClientSessions keyed by origin (scheme, host, port), created on first use."""

    def __init__(self, limits: Limits | None = None, *, per_host: int = 32) -> None:
        self.limits = limits or Limits()
        self.per_host = per_host
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, url: str) -> aiohttp.ClientSession:
        origin = str(URL(url).origin())
        s = self._sessions.get(origin)
        if s is None or s.closed:
            connector = aiohttp.TCPConnector(limit_per_host=self.per_host, enable_cleanup_closed=True)
            s = aiohttp.ClientSession(connector=connector, auto_decompress=True, raise_for_status=False)
            self._sessions[origin] = s
        return s

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            await s.close()


async def fetch(
    pool: SessionPool,
    method: str,
    url: str,
    *,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> OutboundResponse:
    """One request; the response body is read up to `pool.limits.max_response_bytes`."""
    limit = pool.limits.max_response_bytes
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, pool.limits.connect_timeout_s))
    start = time.perf_counter()
    try:
        async with pool.session(url).request(method, url, data=data, headers=headers, params=params, timeout=timeout) as resp:
            if resp.content_length is not None and resp.content_length > limit:
                raise TransportError(f"{method} {url}: response of {resp.content_length} bytes exceeds the limit of {limit} bytes")
            buf = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                buf += chunk
                if len(buf) > limit:
                    raise TransportError(f"{method} {url}: response exceeds the limit of {limit} bytes")
            return OutboundResponse(resp.status, bytes(buf), dict(resp.headers), time.perf_counter() - start)
    except TransportError:
        raise
    except TimeoutError:
        raise TransportError(f"{method} {url}: no complete answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from None

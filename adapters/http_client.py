"""Outbound HTTP plumbing shared by the JSON, form and SOAP clients.

One pooled `ClientSession` per target origin (connections are reused across messages and
capped per host), a timeout per request, and a response size limit enforced while reading.
Anything that keeps the bytes from getting there or back is a `TransportError`.

A target's URLs and timeouts repeat on every request, so each is parsed or built once and
kept (per pool): the hot path hands aiohttp a ready `URL` and `ClientTimeout`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from adapters.base import OutboundResponse, TransportError
from adapters.http_limits import Limits

_CACHE = 1024
"""Distinct URLs kept parsed per pool (an interface path each, query strings apart): far above any spec set."""


class SessionPool:
    """ClientSessions keyed by origin (scheme, host, port), created on first use."""

    def __init__(self, limits: Limits | None = None, *, per_host: int = 32) -> None:
        self.limits = limits or Limits()
        self.per_host = per_host
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._urls: dict[str, tuple[URL, str]] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def parse(self, url: str) -> tuple[URL, str]:
        """`url` parsed, and its origin: once per distinct URL."""
        got = self._urls.get(url)
        if got is None:
            u = URL(url)
            if len(self._urls) >= _CACHE:
                self._urls.clear()
            got = self._urls[url] = (u, str(u.origin()))
        return got

    def session(self, url: str) -> aiohttp.ClientSession:
        return self._session(self.parse(url)[1])

    def _session(self, origin: str) -> aiohttp.ClientSession:
        s = self._sessions.get(origin)
        if s is None or s.closed:
            connector = aiohttp.TCPConnector(limit_per_host=self.per_host, enable_cleanup_closed=True)
            s = aiohttp.ClientSession(connector=connector, auto_decompress=True, raise_for_status=False)
            self._sessions[origin] = s
        return s

    def timeout(self, timeout_s: float) -> aiohttp.ClientTimeout:
        t = self._timeouts.get(timeout_s)
        if t is None:
            if len(self._timeouts) >= _CACHE:
                self._timeouts.clear()
            t = self._timeouts[timeout_s] = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, self.limits.connect_timeout_s))
        return t

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
    start = time.perf_counter()
    target, origin = pool.parse(url)
    try:
        async with pool._session(origin).request(method, target, data=data, headers=headers, params=params,
                                                 timeout=pool.timeout(timeout_s)) as resp:
            size = resp.content_length
            if size is not None and size > limit:
                raise TransportError(f"{method} {url}: response of {size} bytes exceeds the limit of {limit} bytes")
            h = resp.headers
            if size is not None and h.get("Content-Encoding", "identity") == "identity" and "Transfer-Encoding" not in h:
                body = await resp.read()  # exactly `size` bytes, checked above: one read, no copies
            else:  # chunked, until close, or compressed (the limit is on what it inflates to): read while counting
                buf = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    buf += chunk
                    if len(buf) > limit:
                        raise TransportError(f"{method} {url}: response exceeds the limit of {limit} bytes")
                body = bytes(buf)
            return OutboundResponse(resp.status, body, dict(resp.headers), time.perf_counter() - start)
    except TransportError:
        raise
    except TimeoutError:
        raise TransportError(f"{method} {url}: no complete answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as exc:
        raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from None

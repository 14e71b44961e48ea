"""Request limits and the bounded, deadline-bound body read every inbound route uses.

A request body is read in chunks under one deadline: a client that trickles bytes (one a second)
or stops short of its Content-Length is refused when the deadline passes, and a body over the
limit is refused as soon as the limit is crossed, never after buffering all of it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError

from engine.errors import SpecbridgeError
from engine.spec.compiled import DEFAULT_MAX_BYTES, CompiledInterface

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Transport limits of one server or client; the spec's own limits narrow `max_request_bytes`."""

    max_request_bytes: int = DEFAULT_MAX_BYTES
    """The engine's safety cap, used where a spec names no limit (or `0`, "none")."""
    read_timeout_s: float = 30.0
    """Deadline for receiving one whole request body."""
    spool_bytes: int = 1 * MiB
    """File parts larger than this go to a temporary file instead of memory."""
    max_response_bytes: int = DEFAULT_MAX_BYTES
    connect_timeout_s: float = 10.0


class Refusal(SpecbridgeError):
    """An inbound request refused before it reached the sink; answered in the platform's format."""

    def __init__(self, reason: str, *, status: int = 200, rule: str = "parse", path: str = "$") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.rule = rule
        self.path = path


def request_limit(iface: CompiledInterface, default: int) -> int:
    """The interface's limit, else the platform's transport.max_request_bytes, else the cap (0 = none stated)."""
    lim = (iface.spec.limits or {}).get("max_request_bytes")
    if lim is None:
        lim = iface.platform.transport.max_request_bytes
    return min(lim, default) if lim else default


def too_large(size: int | str, limit: int) -> Refusal:
    return Refusal(f"request body of {size} bytes exceeds the limit of {limit} bytes", status=413, rule="size")


def check_length(request: web.BaseRequest, limit: int) -> None:
    cl = request.content_length
    if cl is not None and cl > limit:
        raise too_large(cl, limit)


async def read_body(request: web.BaseRequest, limit: int, timeout_s: float) -> bytes:
    """The whole body, or a Refusal (413 over the limit, 408 past the deadline, 400 truncated)."""
    check_length(request, limit)
    cl = request.content_length
    if cl is not None:  # the common case: one exact read, no copies
        try:
            async with asyncio.timeout(timeout_s):
                return await request.content.readexactly(cl)
        except TimeoutError:
            raise deadline_passed(timeout_s, request.content.total_bytes, cl) from None
        except (asyncio.IncompleteReadError, ClientPayloadError) as exc:
            got = len(exc.partial) if isinstance(exc, asyncio.IncompleteReadError) else request.content.total_bytes
            raise Refusal(f"truncated request body: {got} of {cl} bytes", status=400, rule="truncated") from None
    buf = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    break
                buf += chunk
                if len(buf) > limit:
                    raise too_large(f"more than {limit}", limit)
    except TimeoutError:
        raise deadline_passed(timeout_s, len(buf), cl) from None
    except ClientPayloadError as exc:
        raise Refusal(f"truncated request body ({len(buf)} bytes received): {exc}", status=400, rule="truncated") from None
    if cl is not None and len(buf) < cl:
        raise Refusal(f"truncated request body: {len(buf)} of {cl} bytes", status=400, rule="truncated")
    return bytes(buf)


def deadline_passed(timeout_s: float, got: int, expected: int | None) -> Refusal:
    of = f" of {expected}" if expected is not None else ""
    return Refusal(
        f"request body not received within {timeout_s:g} s ({got}{of} bytes arrived): slow or truncated upload",
        status=408,
        rule="timeout",
    )

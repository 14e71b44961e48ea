"""Form posts: urlencoded and multipart, file parts spooled to disk, limits enforced while streaming.

`Budget` is the sans-I/O core: it is told each chunk as it arrives and refuses the moment a
file part passes its field's `max_bytes` or the request passes its limit, so a 31 MB body or a
3 MB PDF is refused after at most one chunk past the limit, never after buffering all of it.
File parts stay in memory up to `spool_bytes`, then continue in a temporary file.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError

from adapters.base import Attachment, OutboundRequest
from adapters.http_limits import Refusal, check_length, deadline_passed, read_body
from engine.spec.nodes import Node

MAX_PARTS = 1000
_CHUNK = 65536


def file_limits(node: Node | None) -> dict[str, int]:
    """max_bytes of each file field of a request body."""
    return {n: c.max_bytes for n, c in (node.children or {}).items() if c.kind == "file" and c.max_bytes} if node else {}


class Budget:
    """Counts bytes per part and per request; raises the documented Refusal when a limit is crossed."""

    def __init__(self, request_limit: int, field_limits: Mapping[str, int] | None = None) -> None:
        self.request_limit = request_limit
        self.field_limits = dict(field_limits or {})
        self.total = 0
        self.parts = 0
        self._part = 0

    def start_part(self, name: str | None) -> None:
        self.parts += 1
        self._part = 0
        if self.parts > MAX_PARTS:
            raise Refusal(f"more than {MAX_PARTS} form parts", status=413, rule="size")

    def add(self, name: str | None, n: int) -> None:
        self.total += n
        self._part += n
        if self.total > self.request_limit:
            raise Refusal(f"request body exceeds the limit of {self.request_limit} bytes", status=413, rule="size")
        lim = self.field_limits.get(name or "")
        if lim is not None and self._part > lim:
            raise Refusal(f"{name}: file exceeds the limit of {lim} bytes (more than {lim} bytes received)", rule="size", path=name or "$")


@dataclass
class FormPayload:
    """What a form post carried: text fields (repeated names become lists) and file parts."""

    fields: dict[str, str | list[str]] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)

    def add(self, name: str, value: str) -> None:
        old = self.fields.get(name)
        self.fields[name] = value if old is None else [*old, value] if isinstance(old, list) else [old, value]

    def value(self) -> dict[str, Any]:
        """The mapping the validator checks: text as text, files as {filename, content_type, size}."""
        out: dict[str, Any] = dict(self.fields)
        for a in self.attachments:
            out[a.name] = a.as_field()
        return out

    def cleanup(self) -> None:
        for a in self.attachments:
            if a.path is not None:
                a.path.unlink(missing_ok=True)


class _Spool:
    """A file part: bytes in memory until the threshold, then a temporary file."""

    def __init__(self, threshold: int, spool_dir: str | None) -> None:
        self.threshold = threshold
        self.spool_dir = spool_dir
        self.buf = bytearray()
        self.fh: IO[bytes] | None = None
        self.path: Path | None = None
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.fh is None:
            self.buf += chunk
            if len(self.buf) <= self.threshold:
                return
            fd, name = tempfile.mkstemp(prefix="sb-part-", dir=self.spool_dir)
            self.fh, self.path = os.fdopen(fd, "wb"), Path(name)
            chunk, self.buf = bytes(self.buf), bytearray()
        self.fh.write(chunk)

    def close(self) -> tuple[bytes | None, Path | None]:
        if self.fh is not None:
            self.fh.close()
            return None, self.path
        return bytes(self.buf), None

    def discard(self) -> None:
        if self.fh is not None:
            self.fh.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def read_multipart(
    request: web.BaseRequest, budget: Budget, *, timeout_s: float, spool_bytes: int, spool_dir: str | None = None
) -> FormPayload:
    """Stream a multipart/form-data body into a FormPayload (files spooled), or raise a Refusal."""
    check_length(request, budget.request_limit)
    out = FormPayload()
    spool: _Spool | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, aiohttp.BodyPartReader):
                    raise Refusal("nested multipart parts are not accepted", rule="type")
                name = part.name or ""
                budget.start_part(name)
                if part.filename is None:
                    text = bytearray()
                    while chunk := await part.read_chunk(_CHUNK):
                        budget.add(name, len(chunk))
                        text += chunk
                    try:
                        out.add(name, text.decode(part.get_charset("utf-8")))
                    except (UnicodeDecodeError, LookupError):
                        raise Refusal(f"{name}: form field is not valid text in its charset", rule="type", path=name) from None
                    continue
                spool = _Spool(spool_bytes, spool_dir)
                while chunk := await part.read_chunk(_CHUNK):
                    budget.add(name, len(chunk))
                    spool.write(chunk)
                data, path = spool.close()
                ctype = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
                out.attachments.append(Attachment(name, part.filename, ctype, spool.size, path=path, data=data))
                spool = None
    except TimeoutError:
        _discard(out, spool)
        raise deadline_passed(timeout_s, budget.total, request.content_length) from None
    except Refusal:
        _discard(out, spool)
        raise
    except (ClientPayloadError, ValueError, AssertionError, RuntimeError) as exc:
        _discard(out, spool)
        raise Refusal(f"malformed multipart body: {exc}", status=400, rule="parse") from None
    return out


def _discard(out: FormPayload, spool: _Spool | None) -> None:
    if spool is not None:
        spool.discard()
    out.cleanup()


async def read_urlencoded(request: web.BaseRequest, limit: int, *, timeout_s: float) -> FormPayload:
    raw = await read_body(request, limit, timeout_s)
    out = FormPayload()
    try:
        for k, v in parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False):
            out.add(k, v)
    except UnicodeDecodeError as exc:
        raise Refusal(f"form body is not UTF-8 (invalid byte at offset {exc.start})", rule="parse") from None
    return out


def form_data(req: OutboundRequest, multipart: bool) -> aiohttp.FormData:
    """The outbound body: `params` as text fields, `attachments` as file parts (streamed from disk)."""
    fd = aiohttp.FormData(quote_fields=False, charset="utf-8", default_to_multipart=multipart)
    for k, v in req.params.items():
        fd.add_field(k, v)
    for a in req.attachments:
        payload: Any = a.data if a.data is not None else (a.path.open("rb") if a.path is not None else b"")
        fd.add_field(a.name, payload, filename=a.filename or a.name, content_type=a.content_type or "application/octet-stream")
    return fd

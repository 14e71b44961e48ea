"""Shared helpers: specs (fixture and real), a recording sink, a running inbound server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from adapters.base import InboundMessage, Reply
from adapters.http_json import HttpInbound
from adapters.http_limits import Limits
from engine.spec import SpecSet, load_specs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "specs"


@pytest.fixture(scope="session")
def fixture_specs() -> SpecSet:
    return load_specs(FIXTURES, strict=False)


@pytest.fixture(scope="session")
def specs() -> SpecSet:
    return load_specs(ROOT / "specs", strict=False)


class Recorder:
    """A Sink that keeps what it received (attachments read before the adapter cleans up)."""

    def __init__(self, reply: Reply | None = None, read_files: bool = True) -> None:
        self.read_files = read_files
        self.messages: list[InboundMessage] = []
        self.files: dict[str, bytes] = {}
        self.reply = reply or Reply(b'{"code": 200, "msg": "ok"}')

    async def __call__(self, msg: InboundMessage) -> Reply:
        self.messages.append(msg)
        for a in msg.attachments if self.read_files else ():
            self.files[a.name] = a.read()
        return self.reply


Serve = Callable[..., Awaitable[tuple[HttpInbound, Recorder]]]


@pytest.fixture
async def serve(specs: SpecSet, fixture_specs: SpecSet) -> AsyncIterator[Serve]:
    """serve(platform_id, limits=..., reply=...) -> (running inbound, its recording sink)."""
    started: list[HttpInbound] = []

    async def start(
        pid: str, *, limits: Limits | None = None, reply: Reply | None = None, read_files: bool = True, **kw: object
    ) -> tuple[HttpInbound, Recorder]:
        ss = fixture_specs if pid in fixture_specs.platforms else specs
        rec = Recorder(reply, read_files)
        inb = HttpInbound(ss.platforms[pid], limits=limits, common_groups=ss.common_groups, **kw)  # type: ignore[arg-type]
        await inb.start(rec)
        started.append(inb)
        return inb, rec

    yield start
    for inb in started:
        await inb.stop()

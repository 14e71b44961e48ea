"""A real bridge for the admin tests: a jilin_imaging twin on loopback (it can be stopped and brought
back on the same port, with the same keys), a BridgeRuntime on a SQLite journal in tmp_path, and
the admin server on an ephemeral port, reached through real sockets."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.admin.app import AdminServer
from engine.admin.auth import resolve_token
from engine.bridge.model import Bridge, JournalConfig, RetryConfig, Route, RouteTarget, Source
from engine.journal import State
from engine.runtime.bridge import BridgeRuntime
from engine.twin.serve import RunningTwin, serve_twin
from tests.bridge.conftest import CREDENTIALS, Twins, example, mappings, specset

__all__ = ["mappings", "specset"]  # session fixtures shared with the bridge tests

IFACE = "jilin_imaging/savePatientExam"


@dataclass
class Env:
    rt: BridgeRuntime
    admin: AdminServer
    twin: RunningTwin | None
    twin_port: int
    twin_keys: Any
    token: str
    specset: Any
    tmp: Path
    http: aiohttp.ClientSession
    _n: int = 0

    @property
    def url(self) -> str:
        return self.admin.url

    def record(self) -> dict[str, Any]:
        """A fresh PACS exam report (its own natural key)."""
        self._n += 1
        base = example(self.specset, "hospital_pacs/exam_report")
        return {**base, "REPORT_ID": f"R{self._n}-{secrets.token_hex(3)}", "ACCESSION_NO": f"A{self._n}"}

    async def receive(self, source: str = "pacs", n: int = 1) -> list[int]:
        return [i for _ in range(n) for i in await self.rt.receive(source, self.record())]

    async def twin_down(self) -> None:
        assert self.twin is not None
        await self.twin.stop()
        self.twin = None

    async def twin_up(self) -> None:
        """The platform back on the same address, with the same keys (a restart: tokens it issued are gone)."""
        assert self.twin is None
        self.twin = await serve_twin(self.specset, "jilin_imaging", port=self.twin_port, credentials=CREDENTIALS["jilin_imaging"],
                                     secrets=self.twin_keys)

    async def api(self, method: str, path: str, *, token: str | None = "", json: Any = None, data: Any = None) -> tuple[int, Any]:
        headers = {}
        tok = self.token if token == "" else token
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        async with self.http.request(method, self.url + path, headers=headers, json=json, data=data) as resp:
            body = await resp.read()
            return resp.status, (await resp.json(content_type=None)) if body else None

    async def states(self, ids: list[int]) -> list[State]:
        assert self.rt.journal is not None
        return [m.state for m in [await self.rt.journal.get(i) for i in ids] if m is not None]


async def until(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.05) -> Any:
    """Poll an (async) condition until it holds; fails with the last value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        await asyncio.sleep(every)


async def all_in(env: Env, ids: list[int], *states: State) -> bool:
    got = await env.states(ids)
    return len(got) == len(ids) and all(s in states for s in got)


@pytest.fixture
async def env(specset, mappings, tmp_path: Path) -> AsyncIterator[Env]:
    """Two routes (`exams` from source pacs, `backfill` from source archive) to one jilin target that
    gives a message up after two failed attempts (so an outage makes DEAD letters quickly)."""
    tw = Twins(tmp_path)
    twin = await serve_twin(specset, "jilin_imaging", credentials=CREDENTIALS["jilin_imaging"])
    tw.running["jilin_imaging"] = twin
    target = tw.target("jilin_imaging", retry=RetryConfig(base_s=0.05, factor=2, max_delay_s=0.2, max_attempts=2))
    spec = "hospital_pacs/exam_report"
    bridge = Bridge(id="admin-test", title="admin test bridge", journal=JournalConfig(path=str(tmp_path / "journal.db")),
                    secrets=tw.secrets(),
                    sources={"pacs": Source(adapter="dbview", spec=spec), "archive": Source(adapter="dbview", spec=spec)},
                    targets={"jilin": target},
                    routes=[Route(id="exams", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam")]),
                            Route(id="backfill", source="archive", to=[RouteTarget(target="jilin", interface="savePatientExam")])])
    token_file = tmp_path / "admin.token"
    token_file.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
    token = resolve_token(f"file:{token_file}", tmp_path)
    assert token is not None
    rt = BridgeRuntime(bridge, specset, mappings, base_dir=tmp_path)
    await rt.start()
    admin = await AdminServer(rt, token=token, ttl_s=0).start()
    async with aiohttp.ClientSession() as http:
        e = Env(rt, admin, twin, twin.port, twin.twin.secrets, token, specset, tmp_path, http)
        try:
            yield e
        finally:
            await admin.stop()
            await rt.stop()
            if e.twin is not None:
                await e.twin.stop()

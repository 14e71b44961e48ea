"""Shared set-up for bridge tests: the real specs, mappings, twins on loopback, secrets on disk."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from engine.bridge.model import Bridge, JournalConfig, RetryConfig, Route, RouteTarget, Source, Target
from engine.runtime.bridge import BridgeRuntime
from engine.spec import load_specs
from engine.translate import load_mappings
from engine.twin.serve import RunningTwin, serve_twin

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def specset():
    return load_specs(ROOT / "specs")


@pytest.fixture(scope="session")
def mappings(specset):
    return load_mappings(ROOT / "specs" / "mappings", specset)


def example(specset, qualified: str, n: int = 0) -> Any:
    iface = specset.interface(qualified)
    exs = [e for e in iface.spec.examples or [] if e.valid and e.part == "request"]
    return exs[n].body


CREDENTIALS = {
    "jilin_imaging": {"uid": "HOSP0001", "appSecret": "demo-secret-jilin"},
    "city_lab_mr": {"appId": "HOSP0001", "appSecret": "demo-secret-city"},
    "xinjiang_mr": {"org_code": "457759922", "org_name": "示例市人民医院", "user": "bridge", "password": "demo-pass"},
    "wedoctor_supervision": {"appid": "HOSP0001", "key": "demo-key-wedoctor"},
    "pe_system": {"certificate": "demo-cert"},
}
SUPPLY = {
    "xinjiang_mr": {
        "strCredential": '<root><org code="{org_code}">{org_name}</org><visitor type="0" code="{user}" key="{password}"></visitor></root>'
    },
}


class Twins:
    """Twins of the platforms a test needs, and the bridge targets/secrets that reach them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: dict[str, RunningTwin] = {}

    def target(self, platform: str, **kw: Any) -> Target:
        t = self.running[platform]
        creds_dir = self.tmp / "creds" / platform
        creds_dir.mkdir(parents=True, exist_ok=True)
        refs = {}
        for k, v in CREDENTIALS[platform].items():
            (creds_dir / k).write_text(v, encoding="utf-8")
            refs[k] = f"file:{creds_dir / k}"
        retry = kw.pop("retry", RetryConfig(base_s=0.05, factor=2, max_delay_s=0.5, max_attempts=30))
        return Target(platform=platform, base_url=t.url, credentials=refs, supply=SUPPLY.get(platform, {}), retry=retry, **kw)

    def secrets(self) -> dict[str, str]:
        out = {}
        d = self.tmp / "keys"
        d.mkdir(exist_ok=True)
        for t in self.running.values():
            for name, value in t.twin.client_secrets_text().items():
                (d / name).write_text(value, encoding="utf-8")
                out[name] = f"file:{d / name}"
        return out


@pytest.fixture
async def twins(specset, tmp_path: Path) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:
        tw = Twins(tmp_path)

        async def start(platform: str, **opts: Any) -> RunningTwin:
            creds = CREDENTIALS[platform]
            running = await serve_twin(specset, platform, credentials=creds, **opts)
            stack.push_async_callback(running.stop)
            tw.running[platform] = running
            return running

        tw.start = start  # type: ignore[attr-defined]
        yield tw


def make_bridge(tw: Twins, tmp: Path, *, sources: dict[str, Source], routes: list[Route], targets: dict[str, Target]) -> Bridge:
    return Bridge(id="test", journal=JournalConfig(path=str(tmp / "journal.db")), secrets=tw.secrets(),
                  sources=sources, targets=targets, routes=routes)


async def runtime_for(bridge: Bridge, specset, mappings, tmp: Path) -> BridgeRuntime:
    rt = BridgeRuntime(bridge, specset, mappings, base_dir=tmp)
    await rt.start()
    return rt


def stats_json(t: RunningTwin) -> dict[str, Any]:
    return json.loads(json.dumps(t.stats()))


__all__ = ["Route", "RouteTarget", "Source", "example", "make_bridge", "runtime_for", "stats_json"]

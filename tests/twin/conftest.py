"""Shared fixtures: the real specs, a client-side crypto profile for a running twin, HTTP helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.crypto.envelope import CompiledProfile
from engine.crypto.profile import compile_profile
from engine.spec import SpecSet, load_specs
from engine.twin import RunningTwin

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def specs() -> SpecSet:
    return load_specs(ROOT / "specs", strict=False)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client(running: RunningTwin) -> CompiledProfile:
    """The bridge's side of the twin's crypto: the platform's profile with the twin's public keys."""
    profile = running.twin.crypto.profile if running.twin.crypto is not None else None
    assert profile is not None, "this twin runs without crypto"
    return compile_profile(profile, running.twin.client_secrets, role="client")


def example(specs: SpecSet, qualified: str, index: int = 0, *, part: str = "request", valid: bool = True) -> Any:
    """The index-th example body of an interface (request, valid by default)."""
    exs = [e for e in specs.interface(qualified).spec.examples or () if e.part == part and e.valid == valid]
    return exs[index].body

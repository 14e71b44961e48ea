"""Shared fixtures: the real specs and an HTTP client session (helpers are in twinhelp.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from engine.spec import SpecSet, load_specs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def specs() -> SpecSet:
    return load_specs(ROOT / "specs", strict=False)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s

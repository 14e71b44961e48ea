"""The event loop a process runs on: `auto` is uvloop where installed (it is a dependency here), and a
delivery process is started on the loop of the process that starts it."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import SpecbridgeError
from engine.runtime import loops


async def _kind() -> tuple[str, str]:
    return loops.current(), type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_and_asyncio_on_asyncios_own() -> None:
    assert loops.resolve("auto") == "uvloop"
    kind, module = loops.run(_kind())
    assert kind == "uvloop" and module.startswith("uvloop")
    kind, module = loops.run(_kind(), "asyncio")
    assert kind == "asyncio" and module.startswith("asyncio")
    assert loops.run(_kind(), "uvloop")[0] == "uvloop"


def test_an_unknown_loop_is_refused_by_name() -> None:
    with pytest.raises(SpecbridgeError, match="event loop must be one of auto, uvloop, asyncio, not 'trio'"):
        loops.resolve("trio")


def test_a_process_without_uvloop_runs_on_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` falls back; asking for uvloop by name says how to get it."""
    real = loops.importlib.util.find_spec
    monkeypatch.setattr(loops.importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a))
    assert loops.resolve("auto") == "asyncio" and loops.run(_kind())[0] == "asyncio"
    with pytest.raises(SpecbridgeError, match="uvloop is not installed"):
        loops.resolve("uvloop")

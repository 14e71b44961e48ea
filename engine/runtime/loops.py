"""Which event loop a long-running process runs on (`specbridge run --loop`, the demo, delivery processes).

`auto` (the default) is uvloop where it is installed, else asyncio's own loop: uvicorn's choice, for the
same reason. uvloop is libuv under asyncio's API: the loop's own work (polling sockets, scheduling
callbacks, moving bytes through transports) is done in C. That work is a large share of a bridge's: every
record is a database read, a journal commit, an HTTP round trip and their callbacks. bench/bridge.py:
the bridge +8 to +10% and the minimal forwarder it is measured against +5%, both on uvloop.
Nothing in the engine depends on which loop runs it; the test suite runs on asyncio's, and the
subprocess tests (`specbridge run`, delivery processes, the demo) on `auto`.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from engine.errors import SpecbridgeError

T = TypeVar("T")

LOOPS = ("auto", "uvloop", "asyncio")


def resolve(name: str) -> str:
    """The loop `name` stands for here: `auto` becomes uvloop if it can be imported, else asyncio."""
    if name not in LOOPS:
        raise SpecbridgeError(f"event loop must be one of {', '.join(LOOPS)}, not {name!r}")
    if name == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if name == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise SpecbridgeError("event loop uvloop asked for, but uvloop is not installed (pip install uvloop, or --loop asyncio)")
    return name


def factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A new-loop function for `asyncio.Runner` (None: asyncio's default)."""
    if resolve(name) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, T], loop: str = "auto") -> T:
    """`asyncio.run(main)` on the loop `loop` names (Python 3.11's asyncio.run takes no loop factory)."""
    with asyncio.Runner(loop_factory=factory(loop)) as runner:
        return runner.run(main)


def current() -> str:
    """The running loop's kind, as `resolve` names it: what a delivery process is started with."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"

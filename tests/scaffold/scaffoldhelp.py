"""Helpers for the scaffold tests: the CLI as a real subprocess, a twin subprocess, a fresh specs tree."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))\n")


def fresh_tree(dst: Path) -> Path:
    """A directory holding only a copy of the repository's specs/ (what a fresh clone has), to run
    commands in: nothing else of the working tree (docs/, var/, generated files) is visible there."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "specs", dst / "specs")
    return dst


def cli_env() -> dict[str, str]:
    """PATH with this interpreter's bin first, so `specbridge` in a shell line is this checkout's."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`specbridge ARGS` in `cwd`; a traceback is always a bug."""
    proc = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@asynccontextmanager
async def twin_process(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """`specbridge twin ARGS` (with --port 0) as a subprocess; yields its URL, read from its first line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", "twin", *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    m = LISTENING.fullmatch(line)
    if m is None:
        if proc.returncode is None:
            proc.kill()
        err = (await asyncio.wait_for(proc.stderr.read(), 10)).decode()
        await proc.wait()
        raise AssertionError(f"twin did not start: {line!r} {err}")
    try:
        yield m.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0

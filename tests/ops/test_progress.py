"""Progress on stderr: a bar redrawn in place on a real terminal (a pty), plain periodic lines
anywhere else (a pipe, a CI log), JSON lines when logs are JSON. Clocks are injected: no timing."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from engine import logs
from engine.journal import Attempt, Incoming, Journal
from engine.progress import Progress

ROOT = Path(__file__).parents[2]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_not_a_tty_prints_a_line_per_interval_and_one_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("replay x/y", 1000, stream=out, tty=False, interval_s=10, clock=clock) as p:
        for _ in range(10):
            clock.t += 1  # 100 messages a second
            p.advance(100)
    lines = out.getvalue().splitlines()
    assert lines == ["replay x/y: 1000/1000 messages (100%), 100/s"]  # due at 10 s, the end: printed once

    out, clock = io.StringIO(), Clock()
    with Progress("replay x/y", 1000, stream=out, tty=False, interval_s=3, clock=clock) as p:
        for _ in range(10):
            clock.t += 1
            p.advance(100)
    lines = out.getvalue().splitlines()
    assert lines[0] == "replay x/y: 300/1000 messages (30%), 100/s, 7s left"
    assert len(lines) == 4 and lines[-1] == "replay x/y: 1000/1000 messages (100%), 100/s"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_unknown_total_counts_without_a_bar() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("backfill lis", None, unit="rows", stream=out, tty=False, clock=clock) as p:
        clock.t += 2
        p.advance(50)
    assert out.getvalue() == "backfill lis: 50 rows, 25/s\n"
    assert p.bar(80) == "backfill lis 50 rows 25/s"


def test_bar_fits_the_width_and_fills_with_progress() -> None:
    clock = Clock()
    p = Progress("prune", 200, stream=io.StringIO(), tty=True, clock=clock)
    clock.t += 10
    p.advance(50)
    line = p.bar(60)
    assert len(line) <= 60
    assert line.startswith("prune [") and " 25% 50/200 messages 5/s ETA 30s" in line
    inside = line[line.index("[") + 1 : line.index("]")]
    assert inside.count("#") == len(inside) // 4 and set(inside) == {"#", "-"}  # a quarter filled
    p.advance(150)
    assert " 100% 200/200 messages" in p.bar(60) and "-" not in p.bar(60).split("]")[0]


def test_json_logs_make_progress_lines_json() -> None:
    buf = io.StringIO()
    logs.configure("json", "INFO", stream=buf)
    try:
        with Progress("replay a/b", 4, stream=buf, tty=False, clock=Clock()) as p:
            p.advance(4)
    finally:
        logs.configure("text", "WARNING")
    rec = json.loads(buf.getvalue())
    assert rec["logger"] == "specbridge.progress" and rec["msg"] == "replay a/b: 4/4 messages (100%)"
    assert (rec["done"], rec["total"]) == (4, 4)


CHILD = """
import sys
from engine.progress import Progress
t = [0.0]
def clock():
    t[0] += 0.05
    return t[0]
with Progress("work", 40, clock=clock) as p:
    for _ in range(40):
        p.advance()
print("done", flush=True)
"""


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        r, _, _ = select.select([fd], [], [], 10)
        if not r:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        data += chunk
    return data


def _pty_run(args: list[str], cols: int = 70) -> tuple[int, str, str]:
    """Run with stderr on a real terminal (a pty of `cols` columns) and stdout on a pipe."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    err = _read_all(master).decode("utf-8", "replace")
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=60)
    os.close(master)
    return code, out, err


def test_a_real_tty_gets_a_bar_redrawn_in_place() -> None:
    code, out, err = _pty_run([sys.executable, "-c", CHILD])
    assert code == 0 and out == "done\n"
    assert err.endswith("\n")  # the finished bar stays, the shell prompt goes below it
    body = err.replace("\r\n", "\n").rstrip("\n")
    assert "\n" not in body  # one line redrawn in place: nothing scrolls
    frames = [f.removesuffix("\x1b[K") for f in body.split("\r") if f]
    assert len(frames) > 5  # redrawn as it went (the child's clock steps 50 ms a call)
    assert frames[0].startswith("work [") and " 0% 0/40" in frames[0]
    assert re.fullmatch(r"work \[#+\] 100% 40/40 messages \d+/s", frames[-1])
    assert all(len(f) <= 69 for f in frames)  # fits the terminal's 70 columns


async def _dead_journal(path: Path, n: int) -> None:
    async with await Journal.open(str(path), synchronous="NORMAL") as j:
        await j.receive_many([Incoming("jilin_imaging/savePatientExam", "jilin", b"{}", str(i), None, b"{}") for i in range(n)])
        claimed = await j.claim_due("jilin", n)
        await asyncio.gather(*(j.mark_dead(m.id, "refused", attempt=Attempt("fatal", "POST"), lease=m.lease) for m in claimed))


def test_replay_dead_draws_a_bar_on_a_tty_and_plain_lines_in_a_pipe(tmp_path: Path) -> None:
    jpath = tmp_path / "journal.db"
    asyncio.run(_dead_journal(jpath, 1200))
    cmd = [sys.executable, "-m", "engine.cli", "replay", "--journal", str(jpath), "--dead", "jilin_imaging/savePatientExam"]
    code, out, err = _pty_run(cmd, cols=100)
    assert code == 0, err
    assert out == "1200 DEAD message(s) of jilin_imaging/savePatientExam queued again\n"  # the result on stdout, unchanged
    assert "replay jilin_imaging/savePatientExam [" in err and "100% 1200/1200 messages" in err and "\r" in err

    asyncio.run(_dead_journal(tmp_path / "j2.db", 700))
    cmd[5] = str(tmp_path / "j2.db")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "700 DEAD message(s) of jilin_imaging/savePatientExam queued again\n"
    assert proc.stderr.startswith("replay jilin_imaging/savePatientExam: 700/700 messages (100%)")
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr and len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("retranslate", [True, False])
def test_replay_dead_in_pages_skips_superseded_and_keeps_translations(tmp_path: Path, retranslate: bool) -> None:
    from engine.runtime.inspect import replay_dead

    async def go() -> tuple[int, dict[str, int]]:
        async with await Journal.open(str(tmp_path / "j.db")) as j:
            for i in range(7):
                await j.receive("a/b", "t", b'{"v": 1}', key=f"k{i}", translated=b"{}")
            for m in await j.claim_due("t", 10):
                await j.mark_dead(m.id, "refused", lease=m.lease)
            await j.receive("a/b", "t", b'{"v": 2}', key="k0", translated=b"{}")  # supersedes the DEAD k0
            n = await replay_dead(j, "a/b", retranslate=retranslate, page=3)
            return n, (await j.stats())["a/b"]

    n, states = asyncio.run(go())
    assert n == 6  # k1..k6; k0 was superseded by a newer version
    want = "RECEIVED" if retranslate else "TRANSLATED"
    assert states.get(want, 0) >= 6 and states.get("DEAD") == 1

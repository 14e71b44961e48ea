"""Run a Markdown guide: its marked file blocks are written, its marked console blocks are run.

Convention (docs/plugin-guide.md, "For maintainers"): a fenced block right after `<!-- file: PATH -->`
is written to PATH (`<!-- file+: PATH -->` appends to it); the `$ ` lines of a ```console block right after `<!-- runnable -->` are shell
commands, run in order with bash, and the lines after each command are output it must print (each an
exact line, where `...` matches anything). A command ending in ` &` runs in the background until the
guide ends; its `--port 8765` becomes `--port 0`, and the port it prints replaces 8765 in later commands.
`pip install [-e] PATH` installs into a directory of the run (put on PYTHONPATH for later commands), never
into the environment running the tests.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

GUIDE_PORT = "8765"
_MARKER = re.compile(r"<!--\s*(runnable|file(\+?):\s*(\S+))\s*-->")
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


@dataclass
class Command:
    line: int
    text: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Step:
    line: int
    kind: str
    """`file` or `run`."""
    path: str = ""
    text: str = ""
    append: bool = False
    commands: list[Command] = field(default_factory=list)


def parse(markdown: str) -> list[Step]:
    """The guide's file and run steps, in order; a marker not followed by a fence is an error."""
    lines = markdown.splitlines()
    steps: list[Step] = []
    i = 0
    while i < len(lines):
        m = _MARKER.fullmatch(lines[i].strip())
        if m is None:
            i += 1
            continue
        start = i + 1
        if start >= len(lines) or not lines[start].startswith("```"):
            raise ValueError(f"guide line {i + 1}: {lines[i].strip()} must be followed by a fenced block")
        lang = lines[start][3:].strip()
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"guide line {start + 1}: unclosed fence")
        body = lines[start + 1 : end]
        if m.group(1) == "runnable":
            if lang != "console":
                raise ValueError(f"guide line {start + 1}: a runnable block must be ```console, not ```{lang}")
            step = Step(start + 1, "run")
            for k, text in enumerate(body):
                if text.startswith("$ "):
                    step.commands.append(Command(start + 2 + k, text[2:]))
                elif text.strip():
                    if not step.commands:
                        raise ValueError(f"guide line {start + 2 + k}: output before any command")
                    step.commands[-1].expected.append(text)
            steps.append(step)
        else:
            steps.append(Step(start + 1, "file", path=m.group(3), text="\n".join(body) + "\n", append=m.group(2) == "+"))
        i = end + 1
    return steps


def matches(expected: str, output: str) -> bool:
    """An expected line is one whole output line; `...` in it matches any text."""
    pattern = ".*".join(re.escape(part) for part in expected.strip().split("..."))
    return any(re.fullmatch(pattern, line.strip()) for line in output.splitlines())


class Runner:
    """Runs the steps of a guide in `cwd`; collects failures instead of stopping at the first."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.port: str | None = None
        self.background: list[subprocess.Popen[str]] = []
        self.failures: list[str] = []
        self.ran = 0

    def _sub(self, text: str) -> str:
        return text.replace(f"127.0.0.1:{GUIDE_PORT}", f"127.0.0.1:{self.port}") if self.port else text

    def _unsub(self, text: str) -> str:
        return text.replace(f"127.0.0.1:{self.port}", f"127.0.0.1:{GUIDE_PORT}") if self.port else text

    def _start(self, cmd: Command) -> str:
        shell = cmd.text.removesuffix("&").strip().replace(f"--port {GUIDE_PORT}", "--port 0")
        proc = subprocess.Popen(["bash", "-c", f"exec {self._sub(shell)}"], cwd=self.cwd, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.background.append(proc)
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        first = proc.stdout.readline() if sel.select(timeout=30) else ""
        sel.close()
        m = _LISTENING.search(first)
        if m is not None:
            self.port = m.group(1)
        return self._unsub(first)

    def _pip(self, cmd: Command) -> str:
        """`pip install [-e] PATH...` into the run's own site directory: entry points become visible to
        later commands through PYTHONPATH, and the test environment is left as it was."""
        site = self.cwd / ".site"
        paths = [a for a in cmd.text.split()[2:] if a != "-e"]
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                               "--no-index", "--target", str(site), *paths], cwd=self.cwd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            self.failures.append(f"guide line {cmd.line}: `{cmd.text}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), self.env.get("PYTHONPATH", "")) if p)
        return proc.stdout + proc.stderr

    def run(self, steps: list[Step]) -> None:
        try:
            for step in steps:
                if step.kind == "file":
                    path = self.cwd / step.path
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with path.open("a" if step.append else "w", encoding="utf-8") as fh:
                        fh.write(step.text)
                    continue
                for cmd in step.commands:
                    self.ran += 1
                    if cmd.text.rstrip().endswith("&"):
                        out = self._start(cmd)
                    elif cmd.text.startswith("pip install "):
                        out = self._pip(cmd)
                    else:
                        proc = subprocess.run(["bash", "-o", "pipefail", "-c", self._sub(cmd.text)], cwd=self.cwd, env=self.env,
                                              capture_output=True, text=True, timeout=120)
                        out = self._unsub(proc.stdout + proc.stderr)
                        if proc.returncode != 0:
                            self.failures.append(f"guide line {cmd.line}: `{cmd.text}` exited {proc.returncode}:\n{out}")
                            continue
                    if "Traceback" in out:
                        self.failures.append(f"guide line {cmd.line}: `{cmd.text}` printed a traceback:\n{out}")
                    for want in cmd.expected:
                        if not matches(want, out):
                            self.failures.append(f"guide line {cmd.line}: `{cmd.text}` did not print {want.strip()!r}; it printed:\n{out}")
        finally:
            self.stop()

    def stop(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.background:
            try:
                code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.failures.append(f"`{proc.args[-1]}` did not stop on SIGTERM")
                continue
            if code != 0:
                self.failures.append(f"`{proc.args[-1]}` exited {code} on SIGTERM")
        self.background.clear()

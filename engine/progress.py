"""Progress for long CLI work (a backfill, a mass replay, a prune), on stderr only.

On a terminal: one bar redrawn in place, at most ten times a second. Anywhere else (CI logs, a pipe,
a file): a plain line every `interval_s` and one at the end, so a log gets a heartbeat, not a
thousand carriage returns. Hand-written rather than tqdm: the non-terminal lines are the part we
need most and tqdm does not do them (it either stays silent or writes its redraws into the log).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import IO

TTY_REDRAW_S = 0.1


def _duration(s: float) -> str:
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """`with Progress("replay", total) as p: ... p.advance()`. total None: a counter without a bar."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        unit: str = "messages",
        stream: IO[str] | None = None,
        tty: bool | None = None,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = interval_s
        self.clock = clock
        self.done = 0
        self.started = clock()
        self._last = self.started
        self._closed = False
        self._printed = -1

    def __enter__(self) -> Progress:
        if self.tty:
            self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self._last >= (TTY_REDRAW_S if self.tty else self.interval_s):
            self._last = now
            if self.tty:
                self._draw()
            else:
                self._line()

    def close(self) -> None:
        """The final state: the bar completed and a newline, or the last plain line."""
        if self._closed:
            return
        self._closed = True
        if self.tty:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
        elif self._printed != self.done or self.done == 0:
            self._line()

    # -- rendering ----------------------------------------------------------------------------
    def _rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _counts(self) -> str:
        if self.total is None:
            return f"{self.done} {self.unit}"
        return f"{self.done}/{self.total} {self.unit}"

    def text(self) -> str:
        """The plain line: `replay: 450/1000 messages (45%), 320/s, 2s left`."""
        rate = self._rate()
        out = f"{self.label}: {self._counts()}"
        if self.total:
            out += f" ({min(100, self.done * 100 // self.total)}%)"
        if rate:
            out += f", {rate:.0f}/s"
            if self.total and self.done < self.total:
                out += f", {_duration((self.total - self.done) / rate)} left"
        return out

    def bar(self, width: int) -> str:
        """The terminal line: `replay [########------] 45% 450/1000 messages 320/s ETA 2s`, at most
        `width` wide: the label gives way first, then the bar, never the numbers."""
        rate = self._rate()
        tail = f" {self._counts()}" + (f" {rate:.0f}/s" if rate else "")
        if not self.total:
            return f"{self.label}{tail}"[:width]
        pct = min(1.0, self.done / self.total)
        if rate and self.done < self.total:
            tail += f" ETA {_duration((self.total - self.done) / rate)}"
        right = f" {int(pct * 100):3d}%{tail}"
        label = self.label
        room = min(40, width - len(label) - 3 - len(right))
        if room < 10:
            room = 10
            label = label[: max(0, width - room - 3 - len(right))]
        filled = int(room * pct)
        return f"{label} [{'#' * filled}{'-' * (room - filled)}]{right}"[:width]

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            return shutil.get_terminal_size((80, 24)).columns

    def _draw(self) -> None:
        width = self._width() - 1
        self.stream.write("\r" + self.bar(width) + "\x1b[K")
        self.stream.flush()

    def _line(self) -> None:
        from engine.logs import json_handler

        self._printed = self.done
        handler = json_handler()
        if handler is not None and self.stream in (sys.stderr, getattr(handler, "stream", None)):
            # JSON logs: stderr stays one JSON object per line, the progress line among them
            rec = logging.LogRecord("specbridge.progress", logging.INFO, __file__, 0, "%s", (self.text(),), None)
            rec.done, rec.total = self.done, self.total
            self.stream.write(handler.format(rec) + "\n")
        else:
            self.stream.write(self.text() + "\n")
        self.stream.flush()

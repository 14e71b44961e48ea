"""`specbridge backfill BRIDGE SOURCE`: journal a view's existing rows, then exit.

The first run of a bridge against a view with years of rows, or a view re-read after a cursor
reset, is long work better done up front, with a progress bar, than by `run`'s poller between
deliveries. Backfill reads the source exactly as `run` does (same poller, same cursor file, same
routes and translation), journals every record and exits without delivering: the next `specbridge
run` sends them, and its poller resumes after the last backfilled row. Running it while the bridge
runs is safe but pointless: both readers share the cursor, and the journal's keys absorb doubles.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import InboundMessage, Reply
from engine.errors import SpecbridgeError
from engine.progress import Progress
from engine.runtime.config import load_bridge
from engine.runtime.serve import _source_sink, explain_open_failure, open_bridge, open_view


async def pending_rows(poller: Any, page: int = 5000) -> int:
    """Rows after the poller's cursor: a key-only pre-read, so the bar has a total."""
    await poller.open()
    n, after = 0, poller.cursor
    while True:
        rows = await poller.db.fetch_after(poller.view_name, poller.cursor_cols, poller.cursor_cols, after, page)
        n += len(rows)
        if len(rows) < page:
            return n
        after = [rows[-1][c] for c in poller.cursor_cols]


async def backfill(bridge_path: Path, specs_dir: Path, source: str, *, base_dir: Path | None = None) -> int:
    base = base_dir or Path.cwd()
    try:
        bridge = load_bridge(bridge_path)  # the source is checked before the (slower) specs load
        src = bridge.sources.get(source)
        if src is None or src.adapter != "dbview":
            views = sorted(n for n, s in bridge.sources.items() if s.adapter == "dbview")
            why = "is not a source of this bridge" if src is None else f"is a {src.adapter} source, not a view"
            print(f"specbridge: `{source}` {why} (views: {', '.join(views) or 'none'})", file=sys.stderr)
            return 2
        runtime, _ = await open_bridge(bridge_path, specs_dir, bridge=bridge)
    except (SpecbridgeError, OSError) as exc:
        explain_open_failure(exc)
        return 2
    runtime.base_dir = base
    await runtime.open_journal()
    try:
        view = await open_view(runtime, source, base)
    except (SpecbridgeError, OSError) as exc:
        print(f"specbridge: cannot open source {source}: {exc}", file=sys.stderr)
        await runtime.stop()
        return 2
    base_sink = _source_sink(runtime, source)
    journalled = 0
    try:
        total = await pending_rows(view.poller)
        with Progress(f"backfill {source}", total, unit="rows") as bar:

            async def sink(msg: InboundMessage) -> Reply:
                nonlocal journalled
                reply = await base_sink(msg)
                with contextlib.suppress(msgspec.DecodeError, AttributeError):
                    journalled += int(msgspec.json.decode(reply.body).get("accepted", 0))
                bar.advance(int((msg.meta or {}).get("rows", 1)))
                return reply

            complete = await view.poller.poll_once(sink)
            rows = bar.done
    finally:
        await view.stop()
        await runtime.stop()
    dups = runtime.stats.duplicates
    print(f"backfill {source}: {rows} row(s) read as {runtime.stats.received} record(s): {journalled} message(s) journalled"
          f" ({dups} already there); `specbridge run` delivers them")
    if not complete:
        print(f"specbridge: backfill {source} stopped at a record the runtime did not take (see the log); run it again",
              file=sys.stderr)
        return 1
    return 0

"""`specbridge messages` and `specbridge replay`: the journal seen by an operator."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path

import msgspec

from engine.journal import Journal, JournalError, State, UnknownMessage
from engine.progress import Progress


def _ts(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _missing(journal: str) -> bool:
    """A mistyped path must not create an empty journal: say so instead (exit 2)."""
    if Path(journal).exists():
        return False
    print(f"specbridge: {journal}: no such journal", file=sys.stderr)
    return True


DOUBT = " (in doubt)"
DOUBT_WHY = ": its delivery may have reached the platform with no outcome recorded; it is asked about or resent next"


async def messages(args: argparse.Namespace) -> int:
    if _missing(args.journal):
        return 2
    async with await Journal.open(args.journal) as j:
        if args.show is not None:
            m = await j.get(args.show)
            if m is None:
                print(f"specbridge: no message {args.show}", file=sys.stderr)
                return 1
            if args.json:
                print(msgspec.json.encode({"id": m.id, "interface": m.interface, "target": m.target, "state": m.state.value,
                                           "key": m.key, "attempts": m.attempts, "last_error": m.last_error, "in_doubt": m.in_doubt,
                                           "history": [{"n": a.n, "outcome": a.outcome, "status": a.status, "code": a.code,
                                                        "request": a.request, "error": a.error, "started_at": a.started_at}
                                                       for a in m.history]}).decode())
                return 0
            print(f"#{m.id} {m.interface} -> {m.target}  {m.state.value}{DOUBT if m.in_doubt else ''}  key={m.key}  v{m.version}")
            print(f"  created {_ts(m.created_at)}  updated {_ts(m.updated_at)}  attempts {m.attempts}")
            if m.last_error:
                print(f"  last error: {m.last_error}")
            for a in m.history:
                print(f"  [{a.n}] {_ts(a.started_at)} {a.outcome:<9} {a.status or '-'} {a.code or '-'} {a.request} {a.error or ''}")
            return 0
        hits = await j.search(state=State(args.state) if args.state else None, interface=args.interface, target=args.target,
                              key=args.key, since=args.since, until=args.until, limit=args.limit)
        if args.json:
            print(msgspec.json.encode([{"id": h.id, "interface": h.interface, "target": h.target, "state": h.state.value,
                                        "key": h.key, "attempts": h.attempts, "last_error": h.last_error, "in_doubt": h.in_doubt,
                                        "updated_at": h.updated_at} for h in hits]).decode())
        else:
            for h in hits:
                state = h.state.value + ("?" if h.in_doubt else "")
                print(f"#{h.id:<7} {state:<11} {h.interface:<40} {h.target:<12} {h.attempts:>3}  {h.key}  {h.last_error or ''}")
            if any(h.in_doubt for h in hits):
                print(f"?: in doubt{DOUBT_WHY}", file=sys.stderr)
            print(f"{len(hits)} message(s)", file=sys.stderr)
    return 0


async def replay(args: argparse.Namespace) -> int:
    if _missing(args.journal):
        return 2
    async with await Journal.open(args.journal) as j:
        if args.id is not None:
            try:
                state = await j.replay(args.id, retranslate=not args.no_retranslate, force=True)
            except UnknownMessage as exc:
                print(f"specbridge: {exc}", file=sys.stderr)
                return 1
            print(f"#{args.id} queued again ({state.value}); a running bridge sends it now")
        else:
            n = await replay_dead(j, args.dead, retranslate=not args.no_retranslate)
            print(f"{n} DEAD message(s) of {args.dead} queued again")
    return 0


async def replay_dead(j: Journal, interface: str, *, retranslate: bool, page: int = 500) -> int:
    """Replay every DEAD message of an interface a page at a time, with a progress bar. Superseded
    ones are skipped, as `Journal.replay_dead` does; each page goes out in one group commit."""
    total = (await j.stats()).get(interface, {}).get(State.DEAD.value, 0)
    queued, after = 0, None
    with Progress(f"replay {interface}", total) as bar:
        while True:
            hits = await j.search(state=State.DEAD, interface=interface, after_id=after, limit=page, newest_first=False)
            if not hits:
                return queued
            done = await asyncio.gather(*(j.replay(h.id, retranslate=retranslate) for h in hits), return_exceptions=True)
            for r in done:
                if isinstance(r, BaseException) and not isinstance(r, JournalError):
                    raise r
            queued += sum(1 for r in done if not isinstance(r, BaseException))
            bar.advance(len(hits))
            after = hits[-1].id


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `45s` -> seconds (argparse type: a bad value is a usage error)."""
    t = text.strip().lower()
    if len(t) < 2 or t[-1] not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number and a unit, e.g. 30d, 12h, 90m, 2w")
    try:
        n = float(t[:-1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number and a unit, e.g. 30d, 12h, 90m, 2w") from None
    if not math.isfinite(n) or n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: an age is a finite, positive number and a unit")
    return n * _UNITS[t[-1]]


async def prune(args: argparse.Namespace) -> int:
    """`specbridge prune`: delete SENT/DEAD messages older than an age, reporting how many."""
    if _missing(args.journal):
        return 2
    states = sorted(set(args.state))
    before = time.time() - args.older_than
    what = f"{'/'.join(states)} message(s) created before {_ts(before)}"
    async with await Journal.open(args.journal) as j:
        count = await j.prune(before, states, dry_run=True)
        if args.dry_run:
            print(f"would remove {count} {what} (dry run: nothing removed)")
            return 0
        with Progress("prune", count) as bar:
            removed = await j.prune(before, states, progress=bar.advance)
    print(f"removed {removed} {what}")
    return 0

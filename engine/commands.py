"""Sub-commands that belong to later subsystems register here (imported by engine.cli)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import command


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--specs", default="specs")
    p.add_argument("--out", default="var/demo", help="where the demo writes the hospital, keys and journal")
    p.add_argument("--timeout", type=float, default=180.0)
    _loop_arg(p)


@command("demo", "the main job: a sample hospital bridged to twins of all five platforms, on loopback")(_demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    from engine.demo.run import run_demo
    from engine.runtime import loops

    return loops.run(run_demo(Path(args.out), Path(args.specs), timeout_s=args.timeout), args.loop)


def _map_args(p: argparse.ArgumentParser) -> None:
    from engine.translate.cli import add_args

    add_args(p)


@command("map", "show what a source record becomes on a platform interface (and validate it)")(_map_args)
def cmd_map(args: argparse.Namespace) -> int:
    """Translate one record through its mapping chain; the body lives in engine/translate/cli.py."""
    from engine.translate.cli import run

    return run(args)


def _twin_args(p: argparse.ArgumentParser) -> None:
    from engine.twin.cli import add_args

    add_args(p)


@command("twin", "serve a faithful stand-in of a platform on loopback, built from its specs")(_twin_args)
def cmd_twin(args: argparse.Namespace) -> int:
    """The body lives in engine/twin/cli.py."""
    from engine.twin.cli import run

    return run(args)


# -- run / messages / replay --------------------------------------------------------------
def _run_args(p: argparse.ArgumentParser) -> None:
    from engine.logs import add_arguments

    p.add_argument("bridge", help="bridge file (specs/bridges/NAME.yaml)")
    p.add_argument("--specs", default="specs")
    add_arguments(p, on_command=True)
    p.set_defaults(log_level_default="INFO")  # a running bridge logs each delivery
    p.add_argument("--reload", action=argparse.BooleanOptionalAction, default=True,
                   help="watch the bridge file and specs, swap in each change that passes check (default: on; SIGHUP reloads either way)")
    p.add_argument("--reload-interval", type=float, default=1.0, metavar="SECONDS", help="how often to look for changes (default: 1)")
    _loop_arg(p)


def _loop_arg(p: argparse.ArgumentParser) -> None:
    from engine.runtime.loops import LOOPS

    p.add_argument("--loop", choices=LOOPS, default="auto",
                   help="event loop: auto (uvloop if installed, else asyncio's), uvloop or asyncio (default: auto)")


@command("run", "run a bridge: sources into the journal, the journal out to every target")(_run_args)
def cmd_run(args: argparse.Namespace) -> int:
    from engine.runtime import loops
    from engine.runtime.serve import serve_bridge

    return loops.run(serve_bridge(Path(args.bridge), Path(args.specs), reload=args.reload, reload_interval_s=args.reload_interval),
                     args.loop)


def _messages_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--journal", required=True, help="journal database file")
    p.add_argument("--state", choices=["RECEIVED", "TRANSLATED", "SENT", "ERROR", "DEAD"])
    p.add_argument("--interface")
    p.add_argument("--target")
    p.add_argument("--key", help="natural key (exact)")
    p.add_argument("--since", type=float, help="epoch seconds")
    p.add_argument("--until", type=float, help="epoch seconds")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--show", type=int, help="show one message with every attempt")
    p.add_argument("--json", action="store_true")


@command("messages", "search the journal (state, interface, time, key), or show one message")(_messages_args)
def cmd_messages(args: argparse.Namespace) -> int:
    import asyncio

    from engine.runtime.inspect import messages

    return asyncio.run(messages(args))


def _replay_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--journal", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--id", type=int, help="replay one message")
    g.add_argument("--dead", metavar="INTERFACE", help="replay every DEAD message of an interface")
    p.add_argument("--no-retranslate", action="store_true", help="resend the stored translation as is")


@command("replay", "send a message again (one, or all DEAD of an interface)")(_replay_args)
def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from engine.runtime.inspect import replay

    return asyncio.run(replay(args))


# -- prune / backfill -----------------------------------------------------------------------
def _prune_args(p: argparse.ArgumentParser) -> None:
    from engine.runtime.inspect import parse_age

    p.add_argument("--journal", required=True, help="journal database file")
    p.add_argument("--older-than", required=True, type=parse_age, metavar="AGE", help="created longer ago than this: 30d, 12h, 90m, 2w")
    p.add_argument("--state", required=True, action="append", choices=["SENT", "DEAD"],
                   help="prune messages in this state (repeatable); pending ones are never pruned")
    p.add_argument("--dry-run", action="store_true", help="count what would be removed, remove nothing")


@command("prune", "delete old SENT/DEAD messages from the journal, reporting how many")(_prune_args)
def cmd_prune(args: argparse.Namespace) -> int:
    import asyncio

    from engine.runtime.inspect import prune

    return asyncio.run(prune(args))


def _backfill_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("bridge", help="bridge file (specs/bridges/NAME.yaml)")
    p.add_argument("source", help="a dbview source of the bridge")
    p.add_argument("--specs", default="specs")


@command("backfill", "journal a view source's existing rows (as run would), then exit; run delivers them")(_backfill_args)
def cmd_backfill(args: argparse.Namespace) -> int:
    import asyncio

    from engine.runtime.backfill import backfill

    return asyncio.run(backfill(Path(args.bridge), Path(args.specs), args.source))

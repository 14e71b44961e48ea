"""Sub-commands that belong to later subsystems register here (imported by engine.cli)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import command


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--specs", default="specs")
    p.add_argument("--out", default="var/demo", help="where the demo writes the hospital, keys and journal")
    p.add_argument("--timeout", type=float, default=180.0)


@command("demo", "the main job: a sample hospital bridged to twins of all five platforms, on loopback")(_demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from engine.demo.run import run_demo

    return asyncio.run(run_demo(Path(args.out), Path(args.specs), timeout_s=args.timeout))


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
    p.add_argument("bridge", help="bridge file (specs/bridges/NAME.yaml)")
    p.add_argument("--specs", default="specs")


@command("run", "run a bridge: sources into the journal, the journal out to every target")(_run_args)
def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from engine.runtime.serve import serve_bridge

    return asyncio.run(serve_bridge(Path(args.bridge), Path(args.specs)))


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

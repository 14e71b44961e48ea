"""Sub-commands that belong to later subsystems register here (imported by engine.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import EXIT_FINDINGS, EXIT_OK, command


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--specs", default="specs")
    p.add_argument("--out", default="build/demo", help="where the demo writes its docs")


@command("demo", "the main job: run the sample bridge end to end on loopback")(_demo_args)
def cmd_demo(args: argparse.Namespace) -> int:
    """Until the bridge runtime lands: load and check every spec, run every example, write the docs."""
    from engine.spec import load_specs
    from engine.spec.docs import write_docs

    specset = load_specs(Path(args.specs), strict=False)
    n_ex = n_ok = 0
    for plat in specset.platforms.values():
        for iface in plat.interfaces.values():
            n_ex += len(iface.spec.examples or [])
    errors = specset.errors
    for f in errors:
        print(f, file=sys.stderr)
    n_ok = n_ex - sum(1 for f in errors if "example `" in f.message)
    for pid, plat in sorted(specset.platforms.items()):
        print(f"  {pid:<22} {len(plat.interfaces):>3} interfaces  {len(plat.codes):>3} code tables")
    written = write_docs(specset, sorted(specset.platforms), Path(args.out) / "docs")
    print(f"{len(specset.platforms)} platforms; {n_ok}/{n_ex} examples behave as declared; "
          f"{len(written)} doc pages in {args.out}/docs")
    return EXIT_FINDINGS if errors else EXIT_OK


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

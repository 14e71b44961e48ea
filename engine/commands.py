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

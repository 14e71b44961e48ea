"""`specbridge new platform ID`: scaffold a platform spec (engine.scaffold.platform)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import EXIT_OK, EXIT_USAGE, command
from engine.scaffold.platform import TRANSPORTS, ScaffoldError, new_platform


def _args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    plat = sub.add_parser("platform", help="specs/platforms/ID/: platform.yaml, an example interface, a code table, a spec test",
                          description="Scaffold specs/platforms/ID/ so that `specbridge check` passes and `specbridge twin ID` serves it.")
    plat.add_argument("id", metavar="ID", help="platform id: a lowercase identifier, e.g. demo_province")
    plat.add_argument("--dir", default="specs", help="specs directory (default: specs)")
    plat.add_argument("--transport", default="http_json", choices=TRANSPORTS, help="how the platform is called (default: http_json)")
    plat.add_argument("--title", default=None, help="the platform's title (default: '<ID> platform')")


@command("new", "scaffold a new spec: `new platform ID` (passes `check`, runs as a twin)")(_args)
def cmd_new(args: argparse.Namespace) -> int:
    try:
        written = new_platform(Path(args.dir), args.id, transport=args.transport, title=args.title)
    except ScaffoldError as exc:
        print(f"specbridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"specbridge: cannot write {exc.filename or args.dir}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    for rel in written:
        print(f"created {Path(args.dir) / rel}")
    dir_opt = "" if args.dir == "specs" else f" --specs {args.dir}"
    hint = f"next: specbridge check {args.dir} && specbridge twin {args.id} --port 0{dir_opt}"
    print(f"{hint}  (guide: docs/plugin-guide.md)", file=sys.stderr)
    return EXIT_OK

"""`specbridge plugins`: what is installed, with versions, and where each extension came from."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.cli import EXIT_FINDINGS, EXIT_OK, command
from engine.plugins.registry import Extension, PluginInfo, current
from engine.plugins.seams import KIND_TITLES


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print {plugins: [{name, distribution, version, entry_point, error, extensions}]}")
    p.add_argument("--kind", choices=sorted(KIND_TITLES), help="only extensions of this kind")


def _ext_dict(e: Extension) -> dict[str, Any]:
    return {"kind": e.kind, "name": e.name, "origin": e.origin, "file": e.source_file(), "settings": e.settings.__name__,
            "sensitive": e.sensitive, "doc": e.doc.splitlines()[0] if e.doc else ""}


def _plugin_dict(p: PluginInfo, kind: str | None) -> dict[str, Any]:
    return {"name": p.name, "builtin": p.builtin, "distribution": p.dist, "version": p.version, "entry_point": p.entry_point,
            "error": p.error, "extensions": [_ext_dict(e) for e in p.extensions if kind is None or e.kind == kind]}


@command("plugins", "list installed plugins and the extensions each registers (built-ins included)")(_args)
def cmd_plugins(args: argparse.Namespace) -> int:
    reg = current()
    if args.json:
        out = {"plugins": [_plugin_dict(p, args.kind) for p in reg.plugins], "problems": reg.problems}
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    else:
        for p in reg.plugins:
            dist = f"{p.dist} {p.version}" if p.dist else "(no distribution)"
            print(f"plugin {p.name}: {dist}, entry point {p.entry_point}" + (" (built-in)" if p.builtin else ""))
            if p.error is not None:
                print(f"  FAILED to load: {p.error}")
            exts = [e for e in p.extensions if args.kind is None or e.kind == args.kind]
            width = max((len(e.name) for e in exts), default=0)
            for e in exts:
                print(f"  {KIND_TITLES[e.kind]:<23} {e.name:<{width}}  {e.origin}")
        for problem in reg.problems:
            print(f"specbridge: warning: {problem}", file=sys.stderr)
        n_ext = sum(len(p.extensions) for p in reg.plugins)
        print(f"{len(reg.plugins)} plugins ({len(reg.failures)} failed to load), {n_ext} extensions", file=sys.stderr)
    return EXIT_FINDINGS if reg.failures else EXIT_OK

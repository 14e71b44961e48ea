"""`specbridge` command line. Exit codes: 0 ok, 1 findings/invalid, 2 usage or spec error.

Every expected failure prints one line per reason; a traceback here is a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from engine.errors import SpecbridgeError, SpecError, UnknownInterface

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
MAX_INPUT_BYTES = 64 * 1024 * 1024

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Command, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help_: str) -> Callable[[Callable[[argparse.ArgumentParser], None]], Callable[[Command], Command]]:
    """Register a sub-command: `@command(name, help)(add_args)(run)`."""

    def with_args(add_args: Callable[[argparse.ArgumentParser], None]) -> Callable[[Command], Command]:
        def register(fn: Command) -> Command:
            COMMANDS[name] = (fn, add_args, help_)
            return fn

        return register

    return with_args


def _err(msg: str) -> None:
    print(f"specbridge: {msg}", file=sys.stderr)


def _specs_dir(arg: str | None) -> Path:
    return Path(arg) if arg else Path("specs")


# -- check ------------------------------------------------------------------------------
def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", default="specs", help="specs directory (default: specs)")
    p.add_argument("--strict-warnings", action="store_true", help="fail on warnings too")


@command("check", "lint every spec and run every example")(_check_args)
def cmd_check(args: argparse.Namespace) -> int:
    from engine.spec import load_specs

    root = Path(args.dir)
    if not root.is_dir():
        _err(f"{root}: no such directory")
        return EXIT_USAGE
    specset = load_specs(root, strict=False)
    if (root / "mappings").is_dir():
        from engine.translate import lint_mappings

        specset.findings.extend(lint_mappings(specset))
    for f in specset.findings:
        print(f if f.severity == "error" else f"{f.file}:{f.line}: warning: {f.message}")
    n_err = len(specset.errors)
    n_warn = len(specset.findings) - n_err
    n_if = sum(len(p.interfaces) for p in specset.platforms.values())
    print(
        f"{len(specset.platforms)} platforms, {n_if} interfaces, {len(specset.models)} models: {n_err} errors, {n_warn} warnings",
        file=sys.stderr,
    )
    return EXIT_FINDINGS if n_err or (args.strict_warnings and n_warn) else EXIT_OK


# -- validate ---------------------------------------------------------------------------
def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("interface", help="PLATFORM/INTERFACE, e.g. jilin_imaging/savePatientExam")
    p.add_argument("file", help="message file (JSON body, or the XML payload); - for stdin")
    p.add_argument("--response", action="store_true", help="validate as the interface's response")
    p.add_argument("--json", action="store_true", help='print {"valid", "errors": [{path, rule, message, expected, actual}]}')
    p.add_argument("--specs", default=None, help="specs directory (default: specs)")


def _read_input(name: str) -> bytes:
    if name == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    else:
        with open(name, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    return data


@command("validate", "validate one message file against an interface")(_validate_args)
def cmd_validate(args: argparse.Namespace) -> int:
    from engine.spec import load_specs

    try:
        specset = load_specs(_specs_dir(args.specs))
        iface = specset.interface(args.interface)
    except SpecError as exc:
        _err(f"specs have {len(exc.findings)} error(s); first: {exc.findings[0]} (run `specbridge check`)")
        return EXIT_USAGE
    except UnknownInterface as exc:
        _err(str(exc))
        return EXIT_USAGE
    try:
        data = _read_input(args.file)
    except OSError as exc:
        _err(f"{args.file}: {exc.strerror}")
        return EXIT_USAGE
    body = iface.response if args.response else iface.request
    if body is None:
        _err(f"{iface.qualified_id} has no {'response' if args.response else 'request'} body")
        return EXIT_USAGE
    res = (iface.validate_response if args.response else iface.validate_request)(data)
    if args.json:
        out = res.to_dict()
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    else:
        for e in res.errors:
            print(f"{args.file}: {e.path}: {e.rule}: {e.message}")
        for w in res.warnings:
            print(f"{args.file}: {w.path}: warning: {w.rule}: {w.message}")
        print(f"{args.file}: {'valid' if res.valid else f'invalid ({len(res.errors)} errors)'}", file=sys.stderr)
    return EXIT_OK if res.valid else EXIT_FINDINGS


# -- docs -------------------------------------------------------------------------------
def _docs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("platform", nargs="*", help="platform ids (default: all)")
    p.add_argument("-o", "--out", default="docs/platforms", help="output directory (default: docs/platforms)")
    p.add_argument("--specs", default=None)


@command("docs", "generate Markdown docs from the specs")(_docs_args)
def cmd_docs(args: argparse.Namespace) -> int:
    from engine.spec import load_specs
    from engine.spec.docs import write_docs

    try:
        specset = load_specs(_specs_dir(args.specs))
    except SpecError as exc:
        _err(f"specs have {len(exc.findings)} error(s); first: {exc.findings[0]}")
        return EXIT_USAGE
    ids = args.platform or sorted(specset.platforms)
    for pid in ids:
        if pid not in specset.platforms:
            _err(f"unknown platform `{pid}` (known: {', '.join(sorted(specset.platforms))})")
            return EXIT_USAGE
    written = write_docs(specset, ids, Path(args.out))
    print(f"wrote {len(written)} pages to {args.out}", file=sys.stderr)
    return EXIT_OK


# -- schema -----------------------------------------------------------------------------
def _schema_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", default="all", choices=["all", "platform", "interface", "group", "codes"])


@command("schema", "print the JSON Schema of the spec language (for yaml-language-server)")(_schema_args)
def cmd_schema(args: argparse.Namespace) -> int:
    from engine.spec.model import SPEC_KINDS

    if args.kind == "all":
        schemas, components = msgspec.json.schema_components(list(SPEC_KINDS.values()), ref_template="#/$defs/{name}")
        out = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "specbridge spec file",
            "anyOf": list(schemas),
            "$defs": components,
        }
    else:
        out = msgspec.json.schema(SPEC_KINDS[args.kind])
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    _load_extra_commands()
    parser = argparse.ArgumentParser(prog="specbridge", description="Spec-driven integration engine for health-information platforms.")
    from engine.logs import add_arguments

    add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, add_args, help_) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_, description=help_))
    return parser


# Each subsystem's commands live with it; a module listed here registers its commands on import.
EXTRA_COMMAND_MODULES = (
    "engine.commands",
    "engine.spectest.cli",
    "engine.plugins.cli",
    "engine.scaffold.cli",
    "engine.admin.cli",
)


def _load_extra_commands() -> None:
    """Commands that live with their subsystem register themselves on import."""
    import importlib

    for mod in EXTRA_COMMAND_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is None or not mod.startswith(exc.name):
                raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    fn = COMMANDS[args.command][0]
    from engine.logs import configure_from

    try:
        configure_from(args)
    except ValueError as exc:  # a bad SPECBRIDGE_LOG_FORMAT / SPECBRIDGE_LOG_LEVEL
        _err(str(exc))
        return EXIT_USAGE
    try:
        return fn(args)
    except KeyboardInterrupt:
        return 130
    except SpecbridgeError as exc:
        _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return EXIT_USAGE


if __name__ == "__main__":
    # Run through the importable module so commands registered by engine.commands land in the
    # same COMMANDS table (under -m this file is __main__, a second copy of engine.cli).
    from engine.cli import main as _main

    sys.exit(_main())

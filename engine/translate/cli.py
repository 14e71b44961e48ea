"""`specbridge map PLATFORM/INTERFACE SOURCE_FILE`: what a source record becomes, for integrators.

Finds the mapping chain that ends at the interface (source -> canonical -> platform), picks the
start the record validates against (or the one `--from` / `--mapping` names), shows every step's
output and runs the target validator on the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import SpecbridgeError, UnknownInterface

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("interface", help="target: PLATFORM/INTERFACE (e.g. xinjiang_mr/ArchiveAutoReport.lab) or canonical/MODEL")
    p.add_argument("file", help="the source record, JSON or YAML (a view row, a list of rows, a canonical record); - for stdin")
    p.add_argument("--mapping", action="append", default=None, metavar="NAME",
                   help="use the chain containing this mapping (file stem under specs/mappings; repeatable)")
    p.add_argument("--from", dest="source", default=None, metavar="REF",
                   help="the record's kind: sources/ID/IFACE, canonical/MODEL or PLATFORM/IFACE (default: the one it validates against)")
    p.add_argument("--json", action="store_true", help='print {"source", "chain", "steps", "message", "validation", "supplied"}')
    p.add_argument("--code", action="store_true",
                   help="print the Python each mapping of the chain is compiled to (one function per fields block) instead of translating")
    p.add_argument("--specs", default="specs", help="specs directory (default: specs)")


def _err(msg: str) -> None:
    print(f"specbridge: {msg}", file=sys.stderr)


def _read(name: str) -> Any:
    raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        from engine.spec.yamlsrc import YamlError, load

        try:
            return load(raw.decode("utf-8"))[0]
        except (YamlError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}: neither JSON nor YAML ({exc})") from None


def _norm(ref: str) -> str:
    ref = ref.strip()
    return ref.removeprefix("sources/")


def run(args: argparse.Namespace) -> int:
    from engine.spec import load_specs
    from engine.translate.errors import TranslateError
    from engine.translate.loader import load_mappings

    specs = Path(args.specs)
    if not specs.is_dir():
        _err(f"{specs}: no such directory")
        return EXIT_USAGE
    specset = load_specs(specs, strict=False)
    ms = load_mappings(specs / "mappings", specset, strict=False)
    try:
        record = _read(args.file)
    except OSError as exc:
        _err(f"{args.file}: {exc.strerror}")
        return EXIT_USAGE
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    target = args.interface.strip()
    if not target.startswith("canonical/"):
        try:
            specset.interface(_norm(target))
        except UnknownInterface as exc:
            _err(str(exc))
            return EXIT_USAGE
        target = _norm(target)
    chains = ms.chains_to(target)
    if args.mapping:
        chains = [c for c in chains if all(any(t.id == m for t in c.steps) for m in args.mapping)]
    if args.source:
        want = _norm(args.source)
        chains = [c for c in chains if c.source.key == want]
    if not chains:
        why = "; ".join(str(f) for f in ms.errors[:3])
        _err(f"no mapping chain ends at {target}" + (" with the given --mapping/--from" if args.mapping or args.source else "")
             + (f" (mapping errors: {why})" if why else ""))
        return EXIT_USAGE
    chain, src_res = _pick(chains, record)
    for f in ms.errors:
        if any(f.file == t.file for t in chain.steps):
            _err(f"warning: {f}")
    if args.code:
        for t in chain.steps:
            print(f"# == {t.id}: {t.source.key} -> {t.target.key} ({t.file})\n{t.code}")
        return EXIT_OK
    try:
        trace = chain.trace(record)
    except TranslateError as exc:
        if args.json:
            print(msgspec.json.encode({"source": chain.source.key, "chain": [t.id for t in chain.steps], "error": {
                "message": str(exc), "mapping": exc.mapping, "field": exc.field, "source": exc.source,
                "value": exc.value if isinstance(exc.value, (str, int, float, bool)) or exc.value is None else repr(exc.value)}}).decode())
        else:
            _err(f"map: {exc}")
        return EXIT_FINDINGS
    except SpecbridgeError as exc:
        _err(f"map: {exc}")
        return EXIT_FINDINGS
    last_t, message = trace[-1]
    res = last_t.validate(message)
    if args.json:
        out = {
            "source": chain.source.key,
            "source_valid": src_res.valid if src_res is not None else None,
            "chain": [t.id for t in chain.steps],
            "steps": [{"mapping": t.id, "from": t.source.key, "to": t.target.key, "output": o} for t, o in trace],
            "message": message,
            "validation": res.to_dict(),
            "supplied": list(last_t.supplied),
        }
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    else:
        import json

        if src_res is not None and not src_res.valid:
            print(f"# warning: the record does not validate as {chain.source.key}:", file=sys.stderr)
            for e in src_res.errors[:10]:
                print(f"#   {e.path}: {e.rule}: {e.message}", file=sys.stderr)
        for t, o in trace:
            print(f"== {t.id}: {t.source.key} -> {t.target.key}")
            print(json.dumps(o, ensure_ascii=False, indent=2))
        for key, value in message.items() if isinstance(message, dict) else ():
            if isinstance(value, str) and value.lstrip().startswith("<"):
                print(f"-- {key} (carried XML, pretty-printed):")
                print(_pretty_xml(value))
        for name in last_t.supplied:
            print(f"# {name}: supplied at send time by the envelope/auth layer (a placeholder was validated)")
        for e in res.errors:
            print(f"{target}: {e.path}: {e.rule}: {e.message}")
        for w in res.warnings:
            print(f"{target}: {w.path}: warning: {w.rule}: {w.message}")
        print(f"{target}: {'valid' if res.valid else f'invalid ({len(res.errors)} errors)'}", file=sys.stderr)
    return EXIT_OK if res.valid else EXIT_FINDINGS


def _pretty_xml(text: str) -> str:
    from lxml import etree

    from engine.errors import MessageError
    from engine.spec.xmlsafe import parse_xml

    try:
        return etree.tostring(parse_xml(text.encode("utf-8")), encoding="unicode", pretty_print=True).rstrip()
    except MessageError:
        return text


def _pick(chains: list[Any], record: Any) -> tuple[Any, Any]:
    """The chain whose start the record validates against; else the closest one. A record whose very
    shape is wrong for a start (a list of rows given to an object model) never picks it."""
    best: tuple[tuple[bool, int], Any, Any] | None = None
    for c in chains:
        body = c.source.body
        res = body.validate(record) if body is not None else None
        if res is None or res.valid:
            return c, res
        score = (any(e.path in ("", "$") for e in res.errors), len(res.errors))
        if best is None or score < best[0]:
            best = (score, c, res)
    assert best is not None
    return best[1], best[2]

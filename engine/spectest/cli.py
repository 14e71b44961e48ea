"""`specbridge test [PATH ...]`: run the spec unit tests (`tests/*.yaml` under specs/), for CI.

Exit codes: 0 every test passed, 1 a test failed, 2 usage, spec or test-file error (a typo in a
test file is a `file:line` error, never a test that passes by checking nothing).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

import msgspec

from engine.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, command
from engine.errors import Finding


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", default=["specs"],
                   help="a specs directory (its tests/ folders are searched) or test files (default: specs)")
    p.add_argument("--specs", default=None, help="specs directory the tests run against (default: the tree PATH lies in)")
    p.add_argument("-k", dest="pattern", metavar="PATTERN",
                   help="only tests whose name or file contains PATTERN (case-insensitive; * ? [] as in shell globs)")
    p.add_argument("--json", action="store_true", help='print {"passed", "failed", "errors", "results": [...], "findings": [...]}')
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    p.add_argument("--schema", action="store_true", help="print the JSON Schema of test files and exit")


def _err(msg: str) -> None:
    print(f"specbridge: {msg}", file=sys.stderr)


def _selected(pattern: str | None, name: str, file: str) -> bool:
    if not pattern:
        return True
    pat = pattern.lower()
    hay = (name.lower(), file.lower())
    if any(ch in pat for ch in "*?["):
        return any(fnmatch.fnmatchcase(h, pat) for h in hay)
    return any(pat in h for h in hay)


@command("test", "run spec unit tests: mapping and validation tests in specs/**/tests/*.yaml")(add_args)
def cmd_test(args: argparse.Namespace) -> int:
    from engine.spec import load_specs
    from engine.spectest.load import LoadedCase, discover, load_file
    from engine.spectest.model import TestFile
    from engine.spectest.run import Outcome, Runner, specs_root_for
    from engine.translate import MappingSet, load_mappings

    if args.schema:
        print(json.dumps(msgspec.json.schema(TestFile), ensure_ascii=False, indent=2))
        return EXIT_OK
    paths = [Path(p) for p in args.paths]
    for p in paths:
        if not p.exists():
            _err(f"{p}: no such file or directory")
            return EXIT_USAGE
    root = Path(args.specs) if args.specs else specs_root_for(paths[0])
    if not root.is_dir():
        _err(f"{root}: no such specs directory (give --specs)")
        return EXIT_USAGE
    files = discover(paths)
    if not files:
        _err(f"no test files under {', '.join(map(str, paths))} (they live in tests/ folders: see docs/spec-tests.md)")
        return EXIT_USAGE
    findings: list[Finding] = []
    selected: list[LoadedCase] = []
    deselected = 0
    for path in files:  # every file is decoded before the specs load: a typo costs no spec compile
        cases, bad = load_file(path)
        findings.extend(bad)
        if bad:
            continue  # a malformed file runs nothing: its tests would check the wrong thing
        for lc in cases:
            if _selected(args.pattern, lc.case.name, lc.file.rel):
                selected.append(lc)
            else:
                deselected += 1

    outcomes: list[Outcome] = []
    if selected:
        specset = load_specs(root, strict=False)
        mdir = root / "mappings"
        mappings = load_mappings(mdir, specset, strict=False) if mdir.is_dir() else MappingSet(mdir)
        broken = specset.errors + mappings.errors
        if broken:
            for f in broken[:5]:
                _err(str(f))
            _err(f"specs have {len(broken)} error(s); run `specbridge check {root}` first")
            return EXIT_USAGE
        runner = Runner(specset, mappings)
        outcomes = [runner.run(lc) for lc in selected]

    failed = [o for o in outcomes if not o.ok and not o.error]
    errored = [o for o in outcomes if o.error]
    passed = len(outcomes) - len(failed) - len(errored)
    if args.json:
        print(msgspec.json.encode({
            "passed": passed, "failed": len(failed), "errors": len(errored) + len(findings), "deselected": deselected,
            "files": len(files), "results": [o.to_dict() for o in outcomes],
            "findings": [{"file": f.file, "line": f.line, "message": f.message} for f in findings],
        }).decode())
    else:
        for f in findings:
            print(f)
        for o in outcomes:
            if o.ok:
                if args.verbose:
                    print(f"{o.file}:{o.line}: test {o.name}: ok")
                continue
            tag = "error: " if o.error else ""
            if len(o.problems) == 1:
                print(f"{o.file}:{o.problems[0].line}: test {o.name}: {tag}{o.problems[0].text}")
            else:
                print(f"{o.file}:{o.line}: test {o.name}: {tag}{len(o.problems)} problems")
                for pr in o.problems:
                    print(f"    line {pr.line}: {pr.text}")
            if o.chain and not o.error:
                print(f"    (chain: {o.chain})")
        extra = f", {deselected} deselected by -k" if deselected else ""
        errs = len(errored) + len(findings)
        print(f"{len(outcomes)} tests in {len(files)} files: {passed} passed, {len(failed)} failed"
              + (f", {errs} errors" if errs else "") + extra, file=sys.stderr)
    if findings or errored:
        return EXIT_USAGE
    if not outcomes:
        _err(f"no test matches -k {args.pattern!r}" if args.pattern and deselected else "no tests found")
        return EXIT_USAGE
    return EXIT_FINDINGS if failed else EXIT_OK

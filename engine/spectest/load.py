"""Find and decode spec unit test files.

Convention: test files are the `*.yaml` files directly inside any `tests/` directory under the
specs tree (`specs/platforms/<id>/tests/`, `specs/sources/<id>/tests/`, `specs/mappings/tests/`,
`specs/canonical/tests/`). The spec and mapping loaders skip sub-directories, so these never
collide with specs; data files a test reads go in a sub-directory (`tests/data/`) or anywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import Finding
from engine.spec.decode import SpecFile, decode_file
from engine.spectest.model import Case, TestFile

SUFFIXES = (".yaml", ".yml")
MAP_ONLY = ("from_", "mapping", "input", "input_file", "request", "expect", "contains", "absent", "error")
VALIDATE_ONLY = ("message", "message_file", "headers")
_KEY = {"from_": "from"}


@dataclass(eq=False)
class LoadedCase:
    case: Case
    file: SpecFile
    index: int

    @property
    def kind(self) -> str:
        return "map" if self.case.map is not None else "validate"

    def line(self, *path: Any) -> int:
        return self.file.line("tests", self.index, *path)

    def finding(self, message: str, *path: Any) -> Finding:
        return Finding(self.file.rel, self.line(*path), message)


def rel(path: Path) -> str:
    """A path as the user sees it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Test files: files given as is; for a directory, the yaml files directly inside its `tests/` folders."""
    out: list[Path] = []
    for p in paths:
        if p.is_file():
            out.append(p)
            continue
        if p.name == "tests":
            out.extend(sorted(c for c in p.iterdir() if c.is_file() and c.suffix in SUFFIXES))
        for d, dirs, _files in os.walk(p):
            dirs.sort()
            if "tests" in dirs:
                t = Path(d) / "tests"
                out.extend(sorted(c for c in t.iterdir() if c.is_file() and c.suffix in SUFFIXES))
    return list(dict.fromkeys(out))


def _set(case: Case, name: str) -> bool:
    v = getattr(case, name)
    return v is not msgspec.UNSET and v is not None


def _check_case(lc: LoadedCase) -> list[Finding]:
    c = lc.case
    bad: list[Finding] = []
    if (c.map is None) == (c.validate is None):
        return [lc.finding(f"test `{c.name}`: give exactly one of `map:` (a mapping test) or `validate:` (a validation test)")]
    if c.map is not None:
        for name in VALIDATE_ONLY:
            if _set(c, name):
                bad.append(lc.finding(f"test `{c.name}`: `{name}` belongs to validation tests; a mapping test takes `input`", name))
        if c.part is not None:
            bad.append(lc.finding(f"test `{c.name}`: `part` belongs to validation tests (use `from: PLATFORM/IFACE#response`)", "part"))
        if sum(map(bool, (_set(c, "input"), _set(c, "input_file"), _set(c, "example")))) != 1:
            bad.append(lc.finding(f"test `{c.name}`: give exactly one of `input`, `input_file` or `example`"))
        if c.example is not None and c.from_ is None:
            bad.append(lc.finding(f"test `{c.name}`: `example` names an example of the chain's start: give `from:` too", "example"))
        expectations = [n for n in ("expect", "contains", "absent", "error", "valid", "errors") if _set(c, n)]
        if not expectations:
            bad.append(lc.finding(f"test `{c.name}`: expects nothing (give `expect`, `contains`, `absent`, `error`, `valid` or `errors`)"))
        if c.error is not None and len(expectations) > 1:
            bad.append(lc.finding(f"test `{c.name}`: `error` expects translation to fail; it cannot also expect a message", "error"))
        if _set(c, "expect") and _set(c, "contains"):
            bad.append(lc.finding(f"test `{c.name}`: give `expect` (exact) or `contains` (a subset), not both", "contains"))
    else:
        for name in MAP_ONLY:
            if _set(c, name):
                key = _KEY.get(name, name)
                bad.append(lc.finding(f"test `{c.name}`: `{key}` belongs to mapping tests; a validation test takes `message`", key))
        if sum(map(bool, (_set(c, "message"), _set(c, "message_file"), _set(c, "example")))) != 1:
            bad.append(lc.finding(f"test `{c.name}`: give exactly one of `message`, `message_file` or `example`"))
        if c.valid is None and not c.errors:
            bad.append(lc.finding(f"test `{c.name}`: expects nothing (give `valid: true`, `valid: false` or `errors`)"))
    if c.valid and c.errors:
        bad.append(lc.finding(f"test `{c.name}`: `valid: true` contradicts the expected `errors`", "valid"))
    if c.only_these_errors and not c.errors:
        bad.append(lc.finding(f"test `{c.name}`: `only_these_errors` needs `errors`", "only_these_errors"))
    return bad


def load_file(path: Path) -> tuple[list[LoadedCase], list[Finding]]:
    """Decode one test file; its cases, or findings (file:line) when it is malformed."""
    tf, sf, findings = decode_file(path, rel(path), TestFile)
    for f in findings:
        f.message = f.message.replace("see `specbridge schema`", "see `specbridge test --schema`")
    if tf is None or sf is None:
        if not findings:
            findings = [Finding(rel(path), 1, "cannot read the test file")]
        return [], findings
    cases = [LoadedCase(c, sf, i) for i, c in enumerate(tf.tests)]
    if not cases:
        findings.append(sf.finding(("tests",), "no tests in this file"))
    seen: dict[str, int] = {}
    for lc in cases:
        findings.extend(_check_case(lc))
        if lc.case.name in seen:
            findings.append(lc.finding(f"duplicate test name `{lc.case.name}` (also on line {seen[lc.case.name]})", "name"))
        seen.setdefault(lc.case.name, lc.line())
    return cases, findings

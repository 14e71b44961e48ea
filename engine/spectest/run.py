"""Run spec unit tests against a loaded specs tree and its mappings.

Mapping tests go through the same chain search and translators as `specbridge map` and the
runtime (engine/translate); validation tests through the interfaces' compiled validators, as
`specbridge validate` does. A test never raises: every outcome is a `Outcome` with problems,
each located on a line of the test file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import SpecbridgeError, UnknownInterface
from engine.spec.compiled import Result
from engine.spec.decode import SpecFile
from engine.spec.lint import example_message
from engine.spec.loader import SpecSet
from engine.spec.model import Example
from engine.spectest.load import LoadedCase
from engine.spectest.match import compare, lookup, parse_path, path_str, show
from engine.translate import MappingSet, TranslateError

RAW_FORMATS = ("soap", "form", "multipart", "row")
"""Bodies whose validators take a decoded mapping as is (as spec examples do), not JSON text."""


@dataclass
class Problem:
    line: int
    text: str


@dataclass
class Outcome:
    case: LoadedCase
    problems: list[Problem] = field(default_factory=list)
    error: bool = False
    """The test itself is wrong (unknown interface, unreadable file): exit 2, not a failure."""
    chain: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def file(self) -> str:
        return self.case.file.rel

    @property
    def line(self) -> int:
        return self.case.line()

    @property
    def name(self) -> str:
        return self.case.case.name

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "name": self.name, "kind": self.case.kind, "ok": self.ok,
                "error": self.error, "chain": self.chain, "problems": [{"line": p.line, "message": p.text} for p in self.problems]}


class _TestError(Exception):
    def __init__(self, text: str, *path: Any) -> None:
        self.text = text
        self.path = path


def _norm(ref: str) -> str:
    return ref.strip().removeprefix("sources/")


def _read_data(lc: LoadedCase, name: str, key: str) -> Any:
    from engine.translate.cli import _read  # the reader `specbridge map` uses: JSON, else YAML

    path = lc.file.path.parent / name
    try:
        return _read(str(path))
    except OSError as exc:
        raise _TestError(f"{key}: cannot read {name}: {exc.strerror}", key) from None
    except ValueError as exc:
        raise _TestError(f"{key}: {exc}", key) from None


def _patched(lc: LoadedCase, value: Any) -> Any:
    """The input with the test's `set` and `remove` applied (to a copy)."""
    c = lc.case
    if not c.set and not c.remove:
        return value
    if not isinstance(value, (dict, list)):
        raise _TestError("set/remove need a structured input (a mapping or a list, JSON or YAML)", "set" if c.set else "remove")
    value = copy.deepcopy(value)
    for key, edits in (("remove", [(p, None) for p in c.remove or []]), ("set", list((c.set or {}).items()))):
        for i, (text, new) in enumerate(edits):
            where = (key, i) if key == "remove" else (key, text)
            path = parse_path(text)
            found, parent = lookup(value, path[:-1])
            last = path[-1] if path else None
            if not found or not isinstance(parent, (dict, list)) or last is None:
                raise _TestError(f"{key}: {text}: no such place in the input", *where)
            if isinstance(parent, list) and not (isinstance(last, int) and -len(parent) <= last < len(parent)):
                raise _TestError(f"{key}: {text}: no item {last} in a list of {len(parent)}", *where)
            if key == "set":
                if isinstance(parent, dict) and not isinstance(last, str):
                    raise _TestError(f"{key}: {text}: an object has no item [{last}]", *where)
                parent[last] = new
            elif isinstance(parent, dict) and last not in parent:
                raise _TestError(f"remove: {text}: not in the input (misspelt?)", *where)
            else:
                del parent[last]
    return value


def _check_validation(lc: LoadedCase, res: Result, out: Outcome, what: str) -> None:
    c = lc.case
    got = list(res.errors)
    shown = "; ".join(f"{e.path}: {e.rule}: {e.message}" for e in got[:5]) + (f" (+{len(got) - 5} more)" if len(got) > 5 else "")
    if c.valid is True and not res.valid:
        out.problems.append(Problem(lc.line("valid"), f"{what} should be valid but: {shown}"))
        return
    if (c.valid is False or c.errors) and res.valid:
        out.problems.append(Problem(lc.line("errors" if c.errors else "valid"), f"{what} should be invalid but validates"))
        return
    matched: set[int] = set()
    for i, want in enumerate(c.errors or []):
        hits = [k for k, e in enumerate(got) if (want.path is None or want.path == e.path) and (want.rule is None or want.rule == e.rule)
                and (want.message is None or want.message in e.message)]
        if not hits:
            desc = ", ".join(f"{k}={v}" for k, v in (("path", want.path), ("rule", want.rule), ("message", want.message)) if v is not None)
            out.problems.append(Problem(lc.line("errors", i), f"expected finding {{{desc}}} not found; got: {shown or 'none'}"))
        matched.update(hits)
    if c.only_these_errors and not out.problems:
        for k, e in enumerate(got):
            if k not in matched:
                out.problems.append(Problem(lc.line("errors"), f"unexpected finding {e.path}: {e.rule}: {e.message}"))


class Runner:
    def __init__(self, specset: SpecSet, mappings: MappingSet) -> None:
        self.specset = specset
        self.mappings = mappings

    def run(self, lc: LoadedCase) -> Outcome:
        out = Outcome(lc)
        try:
            if lc.kind == "map":
                self._map(lc, out)
            else:
                self._validate(lc, out)
        except _TestError as exc:
            out.error = True
            out.problems = [Problem(lc.line(*exc.path), exc.text)]
        return out

    # -- mapping tests -------------------------------------------------------------------------
    def _chain(self, lc: LoadedCase, record: Any) -> Any:
        from engine.translate.cli import _pick  # the chain `specbridge map` would pick

        c = lc.case
        target = _norm(c.map or "")
        if not target.startswith("canonical/"):
            try:
                self.specset.interface(target.partition("#")[0])
            except UnknownInterface as exc:
                raise _TestError(f"map: {exc}", "map") from None
        chains = self.mappings.chains_to(target)
        if not chains:
            raise _TestError(f"map: no mapping chain ends at {target}", "map")
        if c.mapping is not None:
            names = [c.mapping] if isinstance(c.mapping, str) else c.mapping
            for m in names:
                if m not in self.mappings.translators:
                    raise _TestError(f"mapping: unknown mapping `{m}` (known: {', '.join(sorted(self.mappings.translators))})", "mapping")
            chains = [ch for ch in chains if all(any(t.id == m for t in ch.steps) for m in names)]
            if not chains:
                raise _TestError(f"mapping: no chain to {target} goes through {', '.join(names)}", "mapping")
        if c.from_ is not None:
            want = _norm(c.from_)
            starts = sorted({ch.source.key for ch in chains})
            chains = [ch for ch in chains if ch.source.key == want]
            if not chains:
                raise _TestError(f"from: no chain from {want} to {target} (chains start at: {', '.join(starts)})", "from")
        return _pick(chains, record)[0]

    def _example(self, lc: LoadedCase, ref: str, key: str) -> tuple[Example, SpecFile]:
        """The named example of interface `ref` (a test's `example:`)."""
        name = lc.case.example
        try:
            iface = self.specset.interface(ref)
        except UnknownInterface as exc:
            raise _TestError(f"{key}: {exc}", key) from None
        exs = iface.spec.examples or []
        for ex in exs:
            if ex.name == name:
                pid, _, iid = iface.qualified_id.partition("/")
                return ex, self.specset.platforms[pid].interface_files[iid]
        known = "; ".join(e.name for e in exs) or "none"
        raise _TestError(f"example: {iface.qualified_id} has no example named {name!r} (its examples: {known})", "example")

    def _map(self, lc: LoadedCase, out: Outcome) -> None:
        c = lc.case
        if c.example is not None:
            start = _norm(c.from_ or "").partition("#")[0]
            if start.startswith("canonical/"):
                raise _TestError("example: canonical models have no examples; give `input` or `input_file`", "example")
            ex, _sf = self._example(lc, start, "from")
            if not isinstance(ex.body, (dict, list)):
                raise _TestError(f"example: {c.example!r} of {start} has no structured body to translate", "example")
            record = ex.body
        elif c.input_file is not None:
            record = _read_data(lc, c.input_file, "input_file")
        else:
            record = c.input
        record = _patched(lc, record)
        request = None if c.request is msgspec.UNSET else c.request
        chain = self._chain(lc, record)
        out.chain = chain.id
        last = chain.steps[-1]
        try:
            for t in chain.steps[:-1]:
                record = t.translate(record, request=request)
            tree = last.build(record, request=request)
            message = last.translate(record, request=request)
        except (TranslateError, SpecbridgeError) as exc:
            if c.error is None:
                out.problems.append(Problem(lc.line(), f"translation failed: {exc}"))
            elif c.error not in str(exc):
                out.problems.append(Problem(lc.line("error"), f"translation failed with {str(exc)!r}, which lacks {c.error!r}"))
            return
        if c.error is not None:
            out.problems.append(Problem(lc.line("error"), f"expected translation to fail with {c.error!r}, but it gave {show(tree)}"))
            return
        for key, want, exact in (("expect", c.expect, True), ("contains", c.contains, False)):
            if want is msgspec.UNSET:
                continue
            for path, text in compare(want, tree, exact=exact):
                out.problems.append(Problem(lc.line(key, *path), f"{path_str(path)}: {text}"))
        for i, p in enumerate(c.absent or []):
            found, value = lookup(tree, parse_path(p))
            if found:
                out.problems.append(Problem(lc.line("absent", i), f"{p}: expected absent, got {show(value)}"))
        if c.valid is not None or c.errors:
            _check_validation(lc, last.validate(message), out, f"the message for {last.target.key}")

    # -- validation tests ------------------------------------------------------------------------
    def _validate(self, lc: LoadedCase, out: Outcome) -> None:
        c = lc.case
        target = _norm(c.validate or "")
        raw: Any
        headers = c.headers
        part = c.part
        patched = bool(c.set or c.remove)
        if c.example is not None:
            ex, sf = self._example(lc, target, "validate")
            part = part or ex.part
            if ex.part != part:
                raise _TestError(f"example: {c.example!r} is a {ex.part}, but the test validates the {part}", "example")
            try:
                raw = ex.body if ex.file is None or patched else example_message(ex, sf)
            except OSError as exc:
                raise _TestError(f"example: cannot read its file {ex.file}: {exc.strerror}", "example") from None
            headers = {**(ex.headers or {}), **(c.headers or {})} or None
        elif c.message_file is not None and (target.startswith("canonical/") or patched):
            raw = _read_data(lc, c.message_file, "message_file")
        elif c.message_file is not None:
            path = lc.file.path.parent / c.message_file
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise _TestError(f"message_file: cannot read {c.message_file}: {exc.strerror}", "message_file") from None
        else:
            raw = c.message
        raw = _patched(lc, raw)
        part = part or "request"
        if target.startswith("canonical/"):
            if part != "request" or headers:
                raise _TestError("a canonical model has one body: no `part: response`, no `headers`", "part")
            try:
                model = self.specset.model(target.removeprefix("canonical/"))
            except UnknownInterface as exc:
                raise _TestError(f"validate: {exc}", "validate") from None
            _check_validation(lc, model.validate(raw), out, f"the message ({target})")
            return
        try:
            iface = self.specset.interface(target)
        except UnknownInterface as exc:
            raise _TestError(f"validate: {exc}", "validate") from None
        body = iface.request if part == "request" else iface.response
        if body is None:
            raise _TestError(f"validate: {iface.qualified_id} has no {part} body", "part" if c.part else "validate")
        if isinstance(raw, str):
            msg: Any = raw.encode("utf-8")
        elif isinstance(raw, bytes) or (isinstance(raw, (dict, list)) and body.format in RAW_FORMATS):
            msg = raw
        else:
            msg = msgspec.json.encode(raw)
        validate = iface.validate_request if part == "request" else iface.validate_response
        _check_validation(lc, validate(msg, headers=headers), out, f"the {part} ({iface.qualified_id})")


def specs_root_for(path: Path) -> Path:
    """The specs tree a test path belongs to: the nearest directory (itself or up) holding platforms/ or mappings/."""
    cur = path if path.is_dir() else path.parent
    for d in (cur, *cur.parents):
        if (d / "platforms").is_dir() or (d / "mappings").is_dir() or (d / "canonical").is_dir():
            return d
    return Path("specs")

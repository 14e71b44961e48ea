"""The spec unit test language, as msgspec types (the schema of `tests/*.yaml` under specs/).

Like the spec and mapping languages, these Structs are the single source of truth: test files are
decoded with unknown keys rejected and every problem located by file and line, so a misspelt
`contain:` is an error, never a test that silently checks nothing. `specbridge test --schema`
prints their JSON Schema for editors.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from engine.spec.model import Spec


class ExpectedError(Spec, kw_only=True):
    """One validator finding a test expects. `path` and `rule` as `specbridge validate` prints them;
    `message` is matched as a substring. Leave out what you do not care about."""

    path: str | None = None
    rule: str | None = None
    message: str | None = None


class Case(Spec, kw_only=True):
    """One test: a mapping test (`map:`) or a validation test (`validate:`), never both."""

    name: str
    map: str | None = None
    """Mapping test: the chain's end, `PLATFORM/INTERFACE`, `canonical/MODEL`, or `SOURCE/IFACE#response`
    (the answer a synchronous query gives back to the source)."""
    validate: str | None = None
    """Validation test: `PLATFORM/INTERFACE` (sources too) or `canonical/MODEL`."""
    from_: str | None = msgspec.field(default=None, name="from")
    """Mapping test: the chain's start (`sources/ID/IFACE`, `canonical/MODEL`, `PLATFORM/IFACE#response`);
    default: the start the input validates against, as `specbridge map` picks it."""
    mapping: str | list[str] | None = None
    """Mapping test: use the chain containing this mapping (file stem under specs/mappings), or all of these."""
    input: Any = msgspec.UNSET
    """Mapping test: the source record (a view row, a list of rows, a canonical record...)."""
    input_file: str | None = None
    """Or a JSON/YAML file holding it, relative to this test file."""
    example: str | None = None
    """Or a named example of a spec: for a mapping test, of the chain's start (`from:`); for a
    validation test, of the interface under test (its headers come too)."""
    set: dict[str, Any] | None = None
    """Change the input (or message) first: `{PATH: value}`, paths as in `absent` (`[0].SEX`, `patient.name`)."""
    remove: list[str] | None = None
    """Remove these paths from the input (or message) first; a path that is not there is an error."""
    request: Any = msgspec.UNSET
    """Response mappings: the canonical request the answer completes (`{{ request... }}`)."""
    part: Literal["request", "response"] | None = None
    """Validation test: which body of the interface the message is (default: the example's part, else request)."""
    message: Any = msgspec.UNSET
    """Validation test: the message, a mapping/list for JSON or row bodies, a string for XML or text."""
    message_file: str | None = None
    """Or a file holding it, relative to this test file (read as bytes: the wire form)."""
    headers: dict[str, str] | None = None
    """Validation test: HTTP headers to validate with the message (envelope-in-headers platforms)."""
    expect: Any = msgspec.UNSET
    """Mapping test: the translated message, exactly (carried_as payloads as trees)."""
    contains: Any = msgspec.UNSET
    """Mapping test: a subset of it: objects need only the keys given; lists match item by item and
    must have as many items (`{}` matches any object)."""
    absent: list[str] | None = None
    """Mapping test: dotted paths the translated message must not have (`patient.idCardNo`, `items[0].flag`)."""
    error: str | None = None
    """Mapping test: translation must fail with an error containing this text."""
    valid: bool | None = None
    """The message (for a mapping test: the translated one) must validate (true) or must not (false)."""
    errors: list[ExpectedError] | None = None
    """Validator findings that must all be present (implies valid: false)."""
    only_these_errors: bool = False
    """With errors: no other finding may be present."""
    note: str | None = None


class TestFile(Spec, kw_only=True):
    """A file of spec unit tests: `specs/**/tests/*.yaml`."""

    __test__ = False  # not a pytest class

    tests: list[Case]
    title: str | None = None
    note: str | None = None

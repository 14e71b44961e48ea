"""Compiled bodies and interfaces: the objects the CLI, adapters and runtime validate with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from engine.errors import MessageError
from engine.spec.fast import FastCompiler, Unsupported, plain_json
from engine.spec.model import Body, Interface, Platform
from engine.spec.nodes import Node
from engine.spec.validate import Issue, Walker
from engine.spec.xmlsafe import local, parse_xml, xml_to_obj

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_SOAP_NS = ("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope")
_new = object.__new__
_UNSET = msgspec.UNSET


class Result:
    """The outcome of validating one message: every error and warning, and the decoded value."""

    __slots__ = ("_raw", "_value", "errors", "warnings")

    def __init__(self, errors: list[Issue], warnings: list[Issue], value: Any = msgspec.UNSET, raw: bytes | None = None) -> None:
        self.errors = errors
        self.warnings = warnings
        self._value = value
        self._raw = raw

    @classmethod
    def ok(cls, raw: bytes) -> Result:
        r = _new(cls)  # every valid message passes here: no __init__ call, no attribute lookups
        r.errors = []
        r.warnings = []
        r._value = _UNSET
        r._raw = raw
        return r

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def value(self) -> Any:
        """The message as plain Python data (decoded lazily when the fast path skipped it)."""
        if self._value is msgspec.UNSET and self._raw is not None:
            self._value = msgspec.json.decode(self._raw)
        return None if self._value is msgspec.UNSET else self._value

    def to_dict(self) -> dict[str, Any]:
        """The stable `validate --json` shape."""
        return {
            "valid": self.valid,
            "errors": [_issue_dict(i) for i in self.errors],
            "warnings": [_issue_dict(i) for i in self.warnings],
        }

    def __repr__(self) -> str:
        return f"Result(valid={self.valid}, errors={self.errors!r})"


def _issue_dict(i: Issue) -> dict[str, Any]:
    return {"path": i.path, "rule": i.rule, "message": i.message, "expected": i.expected, "actual": i.actual}


def _has_encrypted(node: Node) -> bool:
    kids = (node.children or {}).values()
    return node.encrypted or (node.item is not None and _has_encrypted(node.item)) or any(map(_has_encrypted, kids))


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


class CompiledBody:
    """One body (request, response or header set) compiled once: fast decoder plus complete walker."""

    def __init__(self, body: Body, node: Node, max_bytes: int | None = None) -> None:
        self.body = body
        self.node = node
        self.format = body.format
        self.max_bytes = body.max_bytes or max_bytes or DEFAULT_MAX_BYTES
        self._decoder: msgspec.json.Decoder[Any] | None = None
        self._check: Any = None
        self._wire: tuple[Any, Any, Any] | None = None
        """The fast path as (decoder, type, post-check)."""
        self._plain: tuple[Any, Any, Any] | None = None
        """The fast path for plaintext: the wire one unless a field is encrypted."""
        if self.format == "json":
            try:
                tp, self._check = FastCompiler().compile(node)
                self._decoder = msgspec.json.Decoder(tp)
                self._wire = self._plain = (self._decoder, tp, self._check)
                if _has_encrypted(node):
                    ptp, pcheck = FastCompiler(plaintext=True).compile(node)
                    self._plain = (msgspec.json.Decoder(ptp), ptp, pcheck)
            except Unsupported:
                self._decoder = self._check = self._wire = self._plain = None

    @property
    def has_fast_path(self) -> bool:
        return self._decoder is not None

    def _fail(self, exc: MessageError) -> Result:
        return Result([Issue(path=exc.path, rule=exc.rule, message=exc.reason)], [])

    def fast_valid(self, data: Any, *, plaintext: bool = False) -> bool:
        """The fast path's answer alone: True is "valid" (the walker finds nothing either), False is doubt.

        Wire bytes are decoded in C; decoded data (the runtime's translated message) is converted in C,
        when it holds nothing but what a JSON decode gives."""
        fast = self._plain if plaintext else self._wire
        if fast is None:
            return False
        decoder, tp, check = fast
        kind = type(data)
        try:
            if kind is bytes and len(data) <= self.max_bytes:
                obj = decoder.decode(data)
            elif (kind is dict or kind is list) and plain_json(data):
                obj = msgspec.convert(data, tp)
            else:
                return False
            return check is None or bool(check(obj))
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return False

    def validate(self, data: Any, *, plaintext: bool = False) -> Result:
        """Validate a message given as bytes/str (wire form) or already-decoded data."""
        decoder = self._decoder
        if decoder is not None and type(data) is bytes and not plaintext and len(data) <= self.max_bytes:
            try:  # the hot path: one C decode plus generated post-checks
                obj = decoder.decode(data)
                if self._check is None or self._check(obj):
                    return Result.ok(data)
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
                pass  # the complete path below produces the findings
        elif decoder is not None and self.fast_valid(data, plaintext=plaintext):  # decoded data, or plaintext
            return Result.ok(data) if type(data) is bytes else Result([], [], data)
        try:
            if isinstance(data, (bytes, bytearray, memoryview, str)):
                raw = _as_bytes(data) if not isinstance(data, memoryview) else data.tobytes()
                if len(raw) > self.max_bytes:
                    raise MessageError(f"body of {len(raw)} bytes exceeds the limit of {self.max_bytes} bytes", rule="size")
                if self.format == "json" and self._decoder is not None and not plaintext:
                    try:
                        obj = self._decoder.decode(raw)
                        if self._check is None or self._check(obj):
                            return Result([], [], raw=raw)
                    except msgspec.ValidationError:
                        pass
                    except (msgspec.DecodeError, UnicodeDecodeError):
                        pass  # the complete path below produces the reason
                value = self._decode(raw)
            else:
                value = data
            return self._walk(value, plaintext)
        except MessageError as exc:
            return self._fail(exc)

    def _decode(self, raw: bytes) -> Any:
        fmt = self.format
        if fmt in ("json", "form", "multipart", "row"):
            try:
                return msgspec.json.decode(raw)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as uexc:
                    raise MessageError(f"body is not UTF-8 (invalid byte at offset {uexc.start}); JSON must be UTF-8") from None
                raise MessageError(f"not valid JSON: {exc}") from None
        if fmt == "xml":
            root = parse_xml(raw)
            if self.body.root and local(root.tag) != self.body.root:
                raise MessageError(f"XML root is <{local(root.tag)}>, expected <{self.body.root}>", rule="type")
            return xml_to_obj(root, self.node)
        if fmt == "soap":
            return self._soap_params(raw)
        if fmt == "text":
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as uexc:
                raise MessageError(f"text is not UTF-8 (invalid byte at offset {uexc.start})") from None
        return raw

    def _soap_params(self, raw: bytes) -> dict[str, Any]:
        stripped = raw.lstrip()
        if not stripped.startswith(b"<"):
            try:
                obj = msgspec.json.decode(raw)
            except msgspec.DecodeError as exc:
                raise MessageError(f"expected a SOAP envelope or a JSON object of parameters: {exc}") from None
            if not isinstance(obj, dict):
                raise MessageError("expected a JSON object of SOAP parameters", rule="type")
            return obj
        root = parse_xml(raw)
        if local(root.tag) != "Envelope" or root.tag[1:].partition("}")[0] not in _SOAP_NS:
            raise MessageError(f"expected a SOAP Envelope, found <{local(root.tag)}>", rule="type")
        body = next((c for c in root if local(c.tag) == "Body"), None)
        op = next(iter(body), None) if body is not None else None
        if op is None:
            raise MessageError("SOAP Body holds no operation element")
        return {local(c.tag): (c.text or "") for c in op if isinstance(c.tag, str)}

    def _walk(self, value: Any, plaintext: bool) -> Result:
        if self.format == "text":
            if not isinstance(value, str):
                return Result([Issue(path="$", rule="type", message="expected a text result")], [], value)
            pat = self.body.pattern
            if pat is not None:
                import re

                if not re.fullmatch(pat, value, re.S):
                    return Result(
                        [Issue(path="$", rule="pattern", message=f"result does not match {pat}", expected=pat, actual=value[:80])],
                        [],
                        value,
                    )
            return Result([], [], value)
        if self.format == "binary":
            return Result([], [], value)
        lenient = self.format not in ("json",)
        w = Walker(lenient=lenient, plaintext=plaintext)
        w.run(self.node, value)
        return Result(w.errors, w.warnings, value)


def _header_result(body: CompiledBody, headers: Mapping[str, str]) -> Result:
    names = {n.lower(): n for n in (body.node.children or {})}
    canon = {names.get(k.lower(), k): v for k, v in headers.items() if k.lower() in names}
    res = body.validate(canon)
    for i in (*res.errors, *res.warnings):
        if i.path != "$" and i.message.startswith(i.path):
            i.message = "headers." + i.message
        i.path = "headers." + i.path if i.path != "$" else "headers"
    return res


@dataclass(eq=False)
class CompiledInterface:
    """One platform interface, compiled: what adapters serve and the runtime sends."""

    platform_id: str
    spec: Interface
    platform: Platform
    file: str
    request: CompiledBody | None
    response: CompiledBody | None
    headers: CompiledBody | None = None
    response_headers: CompiledBody | None = None
    fixed_headers: Mapping[str, str] | None = None
    """Header values this interface always carries (HttpBinding.headers)."""
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    """What the runtime works out once per interface (the wire plan, an outbound route), so a
    reload's new interfaces start afresh and the old ones take theirs with them."""

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def qualified_id(self) -> str:
        return f"{self.platform_id}/{self.spec.id}"

    def _validate(
        self, body: CompiledBody | None, hdr: CompiledBody | None, data: Any, headers: Mapping[str, str] | None, plaintext: bool
    ) -> Result:
        if body is None:
            raise MessageError(f"{self.qualified_id} defines no such body")
        res = body.validate(data, plaintext=plaintext)
        if headers is not None and hdr is not None:
            hres = _header_result(hdr, headers)
            if hdr is self.headers and self.fixed_headers:
                lower = {k.lower(): v for k, v in headers.items()}
                for name, want in self.fixed_headers.items():
                    got = lower.get(name.lower())
                    if got is not None and got != want:
                        hres.errors.append(Issue(path=f"headers.{name}", rule="code", expected=want, actual=got,
                                                 message=f"headers.{name} must be {want!r} for {self.qualified_id}"))
            res.errors[:0] = hres.errors
            res.warnings[:0] = hres.warnings
        return res

    def validate_request(self, data: Any, headers: Mapping[str, str] | None = None, *, plaintext: bool = False) -> Result:
        if headers is None and self.request is not None:
            return self.request.validate(data, plaintext=plaintext)
        return self._validate(self.request, self.headers, data, headers, plaintext)

    def validate_response(self, data: Any, headers: Mapping[str, str] | None = None, *, plaintext: bool = False) -> Result:
        return self._validate(self.response, self.response_headers, data, headers, plaintext)


@dataclass(eq=False)
class CompiledModel:
    """A canonical hub model (or shared group) compiled for validation."""

    id: str
    file: str
    body: CompiledBody

    def validate(self, data: Any) -> Result:
        return self.body.validate(data)

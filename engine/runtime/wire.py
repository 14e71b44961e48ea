"""Sans-I/O: turn a platform message into an OutboundRequest, and a response into a verdict.

The binding (HTTP JSON/form/GET, SOAP parameters), the token carriage, the crypto profile
and the success rule all come from the spec; nothing here knows a platform by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import Attachment, OutboundRequest, OutboundResponse
from engine.crypto.errors import CryptoError
from engine.spec.compiled import CompiledInterface
from engine.spec.model import ErrorCode, SuccessRule
from engine.spec.paths import MISSING, get

_MESSAGE_KEYS = ("msg", "message", "messagetext", "errMessage", "errmsg", "error", "reason")
_MESSAGE_HEADERS = tuple(k.lower() for k in _MESSAGE_KEYS)
_MESSAGE_KEY_SET, _MESSAGE_HEADER_SET = frozenset(_MESSAGE_KEYS), frozenset(_MESSAGE_HEADERS)


@dataclass(slots=True)
class Prepared:
    request: OutboundRequest
    session: Any = None
    """The crypto session (the per-message key) needed to open the response."""
    summary: str = ""
    """Method, path and size: what the journal keeps of the request (never the payload)."""


@dataclass(slots=True)
class Verdict:
    success: bool | None
    code: str | None
    message: str | None
    value: Any


@dataclass(frozen=True, slots=True)
class Plan:
    """What `prepare` and `judge` read off an interface's spec on every message, worked out once."""

    qualified_id: str
    kind: str
    """How the request goes: `json` (an HTTP JSON body), `params` (query or form fields), `soap`, or `none`."""
    summary: str
    """Method and path (or SOAP operation), the start of Prepared.summary."""
    rule: SuccessRule | None
    errors: dict[str, ErrorCode]
    accept: frozenset[str]
    """The success rule's `in` values."""
    fields: frozenset[str]
    """The request's top-level field names (supplied values apply to these only)."""
    files: frozenset[str]
    """Request fields of kind `file` (sent as attachments)."""
    field: tuple[str, ...] | None
    """The success rule's `field` as path segments (what `value_at` reads), split once."""
    http: bool
    """The interface has an HTTP binding (it goes over HTTP even where the platform also speaks SOAP)."""


def plan(iface: CompiledInterface) -> Plan:
    """The interface's Plan, kept with the interface (a reload's new specs get new ones)."""
    got = iface.memo.get("wire")
    if got is None:
        got = iface.memo["wire"] = _plan(iface)
    return got


def _plan(iface: CompiledInterface) -> Plan:
    binding = iface.spec.binding
    kind, summary = "none", ""
    if binding is not None and binding.soap is not None and binding.http is None:
        kind, summary = "soap", f"SOAP {binding.soap.operation}"
    elif binding is not None and binding.http is not None:
        http = binding.http
        fmt = iface.request.format if iface.request is not None else "json"
        kind = "params" if http.method == "GET" or fmt in ("form", "multipart") or http.query else "json"
        summary = f"{http.method} {http.path}"
    rule = iface.spec.success or iface.platform.success
    children = (iface.request.node.children or {}) if iface.request is not None else {}
    return Plan(
        iface.qualified_id, kind, summary, rule, {**(iface.platform.errors or {}), **(iface.spec.errors or {})},
        frozenset(rule.in_ or ()) if rule is not None else frozenset(), frozenset(children),
        frozenset(k for k, n in children.items() if n.kind == "file"),
        None if rule is None or rule.field is None else tuple(seg.removesuffix("[]") for seg in rule.field.split(".") if seg),
        binding is not None and binding.http is not None,
    )


def value_at(obj: Any, dotted: str) -> Any:
    """The value at a dotted path of a decoded response, or None."""
    got = get(obj, dotted)
    return None if got is MISSING else got


def _at(obj: Any, parts: tuple[str, ...]) -> Any:
    """value_at with the path split already."""
    for name in parts:
        if not isinstance(obj, dict) or name not in obj:
            return None
        obj = obj[name]
    return obj


def _set(obj: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def prepare(
    iface: CompiledInterface,
    message: Mapping[str, Any],
    *,
    crypto: Any = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    timeout_s: float = 30.0,
) -> Prepared:
    """Serialise, carry the token, encrypt and sign one message for its interface's binding."""
    p = plan(iface)
    auth = iface.platform.auth
    carry = auth.carry if auth is not None and auth.kind == "token" and token is not None else None
    obj: dict[str, Any] = message if type(message) is dict else dict(message)  # copied below before any change
    if p.kind == "json" and carry is None and crypto is None:  # the common case: a JSON body as it is
        body = msgspec.json.encode(obj)
        req = OutboundRequest(p.qualified_id, body, dict(headers or {}), [], params={}, timeout_s=timeout_s)
        return Prepared(req, None, f"{p.summary} ({len(body)} bytes)")
    hdrs = dict(headers or {})
    params: dict[str, str] = {}
    attachments: list[Attachment] = []
    if carry is not None and auth is not None and auth.interface != iface.id:
        if carry.in_ == "header":
            hdrs[carry.name] = token  # type: ignore[assignment]
        elif carry.in_ == "body":
            obj = dict(obj)
            _set(obj, carry.name, token)
    if crypto is not None and getattr(crypto, "encrypted_fields", None):
        obj = crypto.encrypt_fields(obj)
    if p.kind == "soap":
        params = {k: v if isinstance(v, str) else msgspec.json.encode(v).decode() for k, v in obj.items() if v is not None}
        body = b""
    elif p.kind == "params":
        obj = dict(obj)
        for k in p.files & obj.keys():
            f = obj.pop(k)
            if isinstance(f, Mapping) and f.get("path"):
                path = Path(str(f["path"]))
                attachments.append(Attachment(k, f.get("filename") or path.name, f.get("content_type"), path.stat().st_size, path))
        params = {k: str(v) for k, v in obj.items() if v is not None}
        body = b""
    elif p.kind == "json":
        body = msgspec.json.encode(obj)
    else:
        raise ValueError(f"{iface.qualified_id} has no HTTP or SOAP binding to send on")
    if carry is not None and carry.in_ == "query" and token is not None:
        params[carry.name] = token
    session = None
    if crypto is not None:
        sealed = crypto.seal_request(body=body, headers=hdrs, params=params or None)
        body, hdrs, params, session = sealed.body, dict(sealed.headers), dict(sealed.params or {}), sealed.session
    summary = f"{p.summary} ({len(body) + sum(len(v) for v in params.values())} bytes)"
    req = OutboundRequest(p.qualified_id, body, hdrs, attachments, params=params, timeout_s=timeout_s)
    return Prepared(req, session, summary)


def rules(iface: CompiledInterface) -> tuple[SuccessRule | None, dict[str, ErrorCode]]:
    p = plan(iface)
    return p.rule, p.errors


def judge(iface: CompiledInterface, resp: OutboundResponse, *, crypto: Any = None, session: Any = None) -> Verdict:
    """Read a response by the spec's success rule: success, the platform's code and message."""
    body, headers = resp.body, resp.headers
    if crypto is not None:
        try:
            opened = crypto.open_response(body, headers, session=session)
            body, headers = opened.body, {**headers, **opened.headers}
        except CryptoError as exc:  # e.g. a platform error answered in plaintext: judge it as it came
            if not (body[:1] in (b"{", b"[", b"<") or body[:2] in (b"ok", b"er")):
                return Verdict(False, None, f"response could not be opened: {exc}", None)
    p = plan(iface)
    rule = p.rule
    lower = {k.lower(): v for k, v in headers.items()}
    if "x-soap-fault" in lower:
        return Verdict(False, None, body.decode("utf-8", "replace")[:300], None)
    value: Any = None
    if body[:1] in (b"{", b"["):
        try:
            value = msgspec.json.decode(body)
        except msgspec.DecodeError:
            value = None
    message = None
    if isinstance(value, Mapping) and not _MESSAGE_KEY_SET.isdisjoint(value):  # the first of the keys with a value
        for k in _MESSAGE_KEYS:
            if got := value.get(k):
                message = str(got)
                break
    if not message and not _MESSAGE_HEADER_SET.isdisjoint(lower):
        message = next((lower[k] for k in _MESSAGE_HEADERS if lower.get(k)), None)
    if rule is None:
        return Verdict(200 <= resp.status < 300, None, message, value if value is not None else body.decode("utf-8", "replace"))
    code: str | None = None
    success: bool | None = None
    text = body.decode("utf-8", "replace") if value is None or rule.prefix is not None else ""
    if rule.prefix is not None:
        success = text.startswith(rule.prefix)
        if not success:
            head = text.partition(":")[0].strip()
            code = head if head and len(head) < 32 else None
            message = message or text[:300]
    elif p.field is not None:
        got = _at(value, p.field)
        code = None if got is None else str(got)
        success = code is not None and code in p.accept
    elif rule.header is not None:
        got = lower.get(rule.header.lower())
        code = got
        success = got is not None and got in p.accept
    if rule.http_status is not None and resp.status not in rule.http_status:
        success = False
    return Verdict(success, code, message, value if value is not None else text)

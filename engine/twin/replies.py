"""Answers in the platform's own format, built from the spec: its success rule, its codes, its bodies.

The success rule says where the verdict goes (a body field, a response header, a text prefix); the
errors table gives each code's message. Success answers get the ok code and its message; error
answers a chosen documented code and a reason naming the field. What the response does not declare
is dropped, so a twin's answer validates against its own spec (the tests check that it does).

adapters/reply.ReplyBuilder answers the adapters' refusals the same way but picks the code itself;
the twin needs to name the code (11003, 1001...), hence this module. Once ReplyBuilder takes an
explicit code, the error half here can go.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import msgspec

from adapters.base import Reply
from adapters.reply import _INVALID_HINTS, _find, _message_field, _typed  # one reading of a response tree
from engine.spec.compiled import CompiledInterface
from engine.spec.model import ErrorCode, SuccessRule
from engine.spec.nodes import Node
from engine.spec.xmlsafe import obj_to_xml, to_bytes

SYNTHETIC_INVALID = "INVALID_REQUEST"
"""Answered for bad input when a platform documents no code for it (only a retryable one): an
unknown code, which clients treat as final; better than a retry code that would loop."""
JSON = "application/json; charset=utf-8"
Transport = Literal["http", "soap"]


def prune(obj: Any, node: Node | None) -> Any:
    """Keep only what the response declares (a `$copy` of a stored record carries more)."""
    if node is None:
        return obj
    if isinstance(obj, list):
        inner = node.item if node.item is not None else node
        return [prune(v, inner if node.children is None else node) for v in obj]
    if isinstance(obj, dict) and node.children is not None:
        out = {}
        for k, v in obj.items():
            child = node.children.get(k) or next((c for c in node.children.values() if k in c.aliases), None)
            if child is not None or node.extra == "ignore":
                out[k] = prune(v, child)
        return out
    return obj


def _stringify(obj: Any) -> Any:
    """XML and header values are text: numbers become their decimal text."""
    if isinstance(obj, dict):
        return {k: _stringify(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_stringify(v) for v in obj]
    return obj


class Replies:
    """Success and error answers of one interface."""

    def __init__(self, iface: CompiledInterface, code_node: Node | None = None) -> None:
        """code_node: how the platform types its code field, for an interface whose own response
        (a PDF) does not declare it."""
        self.iface = iface
        self.code_node = code_node
        self.rule: SuccessRule | None = iface.spec.success or iface.platform.success
        plat = iface.platform.success
        # An interface whose success is a text prefix (a PDF) may still fail in the platform's format.
        self.error_rule = plat if self.rule is not None and self.rule.prefix is not None and plat is not None else self.rule
        self.errors: dict[str, ErrorCode] = {**(iface.platform.errors or {}), **(iface.spec.errors or {})}
        rule = self.rule
        oks = [c for c, e in self.errors.items() if e.action == "ok"]
        self.ok_code = (rule.in_[0] if rule is not None and rule.in_ else None) or (oks[0] if oks else None)
        self.invalid_code = self._pick_invalid()
        self.retry_code = next((c for c, e in self.errors.items() if e.action == "retry"), None)
        self.resp_node = iface.response.node if iface.response is not None else None
        self.resp_format = iface.response.format if iface.response is not None else "json"

    def _pick_invalid(self) -> str | None:
        fatal = {c: e for c, e in self.errors.items() if e.action == "fatal"}
        for hint in _INVALID_HINTS:
            for code, e in fatal.items():
                if hint in (e.en or "").lower():
                    return code
        if fatal:
            return next(iter(fatal))
        return SYNTHETIC_INVALID if self.errors else None

    def message(self, code: str | None) -> str:
        e = self.errors.get(code or "")
        return e.message if e is not None else ""

    def reauth_code(self) -> str | None:
        return next((c for c, e in self.errors.items() if e.action == "reauth"), None)

    def fatal_code(self) -> str | None:
        return next((c for c, e in self.errors.items() if e.action == "fatal"), None)

    # -- success ---------------------------------------------------------------------------
    def success(self, body: Any) -> Reply:
        """The rendered template completed with the success marker and serialised per the response."""
        rule, fmt = self.rule, self.resp_format
        if fmt == "binary":
            if isinstance(body, dict) and isinstance(body.get("data"), (bytes, bytearray)):
                return Reply(bytes(body["data"]), 200, body.get("content_type") or "application/octet-stream")
            return Reply(body if isinstance(body, bytes) else b"", 200, "application/octet-stream")
        if fmt == "text" or (rule is not None and rule.prefix is not None and fmt not in ("xml", "json")):
            text = body if isinstance(body, str) else (rule.prefix if rule is not None and rule.prefix else "ok")
            return Reply(text.encode("utf-8"), 200, "text/plain; charset=utf-8")
        obj = body if isinstance(body, dict) else {}
        headers: dict[str, str] = {}
        if rule is not None and rule.field is not None and self.ok_code is not None:
            parent, leaf = _find(self.resp_node, rule.field)
            *outer, last = rule.field.split(".")
            target = obj
            for part in outer:
                target = target.setdefault(part, {})
            marker = {last: target.get(last, _typed(self.ok_code, leaf))}
            msg = _message_field(parent, last)
            if msg:
                marker[msg] = target.get(msg, self.message(self.ok_code))
            rest = {k: v for k, v in target.items() if k not in marker}
            target.clear()
            target.update({**marker, **rest})  # the verdict first, as the documents print it
        if rule is not None and rule.header is not None and self.ok_code is not None:
            headers = self._headers(self.ok_code, self.message(self.ok_code))
        obj = prune(obj, self.resp_node)
        if fmt == "xml":
            root = self.iface.response.body.root if self.iface.response is not None else None
            el = obj_to_xml(root or "root", _stringify(obj), self.resp_node)
            return Reply(to_bytes(el, declaration=True), 200, "text/xml; charset=utf-8", headers)
        return Reply(msgspec.json.encode(obj), 200, JSON, headers)

    def _headers(self, code: str, text: str) -> dict[str, str]:
        rule = self.error_rule if self.error_rule is not None and self.error_rule.header else self.rule
        assert rule is not None and rule.header is not None
        node = self.iface.response_headers.node if self.iface.response_headers else None
        headers = {rule.header: code}
        msg = _message_field(node, rule.header)
        if msg:
            headers[msg] = quote(text, safe="")
        for name, child in (node.children or {}).items() if node else ():
            if child.required and name not in headers and child.spec.default is not None:
                headers[name] = str(child.spec.default)
        return headers

    # -- errors ----------------------------------------------------------------------------
    def error(self, code: str | None, reason: str = "", *, status: int = 200, transport: Transport = "http") -> Reply:
        """The platform's failure answer with `code` (a documented one) and a reason."""
        rule = self.error_rule
        base = self.message(code)
        plain = rule is None or rule.prefix is not None or transport == "soap" or code is None
        if plain and not base and code is not None and code not in self.errors:
            base = code  # a platform without codes: the spec gave the reason text (`empty: 报告不存在`)
        text = f"{base}: {reason}" if base and reason else (base or reason)
        if plain:
            return Reply(f"error:{text}".encode(), status, "text/plain; charset=utf-8")
        assert code is not None
        if rule.header is not None:
            return Reply(b"{}", status, JSON, self._headers(code, text))
        if rule.field is not None:
            parent, leaf = _find(self.resp_node, rule.field)
            *outer, last = rule.field.split(".")
            inner: dict[str, Any] = {last: _typed(code, leaf or self.code_node), _message_field(parent, last) or "message": text}
            body: dict[str, Any] = inner
            for part in reversed(outer):
                body = {part: body}
            return Reply(msgspec.json.encode(body), status, JSON)
        return Reply(msgspec.json.encode({"error": text}), status, JSON)

    def unavailable(self, *, transport: Transport = "http") -> Reply:
        """A retryable failure (fault injection): the platform's retry code, else HTTP 503."""
        if self.retry_code is not None and transport == "http":
            return self.error(self.retry_code, "injected failure (twin --fail-every)")
        return Reply(b"Service Unavailable (twin --fail-every)", 503, "text/plain; charset=utf-8")

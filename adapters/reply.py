"""Answer refused input in the platform's own error format, built from the spec alone.

The spec says how success is told (`success`: a body field, a response header or a text
prefix) and lists the platform's codes (`errors`). A refusal fills the same place with the
platform's code for bad input (or for a server failure) and puts the reason, which names the
field, where the platform puts its message. No per-platform code: the same builder answers
jilin `{"code": 400, "msg": ...}`, pe_system `{"status": -1, "message": ...}`, wedoctor's
string codes, city_lab_mr's `messagecode` / `messagetext` headers and xinjiang's `error:` text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from adapters.base import Reply
from engine.spec.compiled import CompiledInterface
from engine.spec.model import ErrorCode, SuccessRule
from engine.spec.nodes import Node
from engine.spec.validate import Issue

log = logging.getLogger("specbridge.adapters")

Kind = Literal["invalid", "internal"]
_MESSAGE = re.compile(r"(msg|message|text|desc|reason|err)", re.I)
# What a platform's table calls "your input is wrong", most specific first (matched on `en`).
_INVALID_HINTS = ("non-conforming input", "input", "parameter", "client request", "parse", "invalid", "format")
_MAX_ISSUES = 5


def reason_of(issues: Iterable[Issue]) -> str:
    """One line naming each failing field and rule (the first few, then a count)."""
    items = list(issues)
    parts = [_located(i) for i in items[:_MAX_ISSUES]]
    if len(items) > _MAX_ISSUES:
        parts.append(f"and {len(items) - _MAX_ISSUES} more")
    return "; ".join(parts)


def _located(i: Issue) -> str:
    """The issue's message, its path in full (header findings carry `headers.` only in the path)."""
    msg, path = i.message, i.path
    if path not in ("", "$") and not msg.startswith(path):
        parts = path.split(".")
        tail = next((".".join(parts[k:]) for k in range(1, len(parts)) if msg.startswith(".".join(parts[k:]))), None)
        msg = ".".join(parts[: len(parts) - len(tail.split("."))]) + "." + msg if tail else f"{path}: {msg}"
    return msg


def _pick(errors: Mapping[str, ErrorCode], kind: Kind) -> str | None:
    failing = {c: e for c, e in errors.items() if e.action != "ok"}
    for code, e in failing.items():
        if kind in (e.use_for or ()):
            return code
    if kind == "internal":
        for code, e in failing.items():
            if e.action == "retry":
                return code
    for hint in _INVALID_HINTS if kind == "invalid" else ():
        for code, e in failing.items():
            if hint in (e.en or "").lower():
                return code
    fatal = [c for c, e in failing.items() if e.action == "fatal"]
    return fatal[0] if fatal else next(iter(failing), None)


def _typed(code: str, node: Node | None) -> Any:
    if node is not None and node.kind in ("int", "number") and re.fullmatch(r"-?\d+", code):
        return int(code)
    return code


def _find(node: Node | None, dotted: str) -> tuple[Node | None, Node | None]:
    """(parent object node, leaf node) of a dotted path in a response tree."""
    parent, cur = None, node
    for part in dotted.split("."):
        if cur is None or cur.children is None:
            return parent, None
        parent, cur = cur, cur.children.get(part)
    return parent, cur


def _message_field(parent: Node | None, skip: str) -> str | None:
    for name, child in (parent.children or {}).items() if parent is not None else ():
        if name != skip and child.kind == "string" and _MESSAGE.search(name):
            return name
    return None


class ReplyBuilder:
    """Builds the error replies of one interface (compiled once per route)."""

    def __init__(self, iface: CompiledInterface, *, text_prefix: str = "error:") -> None:
        self.iface = iface
        self.rule: SuccessRule | None = iface.spec.success or iface.platform.success
        errors = {**(iface.platform.errors or {}), **(iface.spec.errors or {})}
        self.codes: dict[Kind, str | None] = {"invalid": _pick(errors, "invalid"), "internal": _pick(errors, "internal")}
        self.text_prefix = text_prefix

    def error(self, reason: str, *, kind: Kind = "invalid", status: int = 200) -> Reply:
        """The platform's error answer carrying `reason`."""
        rule, code = self.rule, self.codes[kind] or "error"
        if rule is None or rule.prefix is not None:
            return Reply(f"{self.text_prefix}{reason}".encode(), status, "text/plain; charset=utf-8")
        if rule.header is not None:
            node = self.iface.response_headers.node if self.iface.response_headers else None
            headers = {rule.header: code}
            msg = _message_field(node, rule.header)
            if msg:
                headers[msg] = quote(reason, safe="")
            for name, child in (node.children or {}).items() if node else ():
                if child.required and name not in headers and child.spec.default is not None:
                    headers[name] = str(child.spec.default)
            return Reply(b"{}", status, headers=headers)
        if rule.field is not None:
            resp = self.iface.response.node if self.iface.response else None
            parent, leaf = _find(resp, rule.field)
            *outer, last = rule.field.split(".")
            inner: dict[str, Any] = {last: _typed(code, leaf)}
            inner[_message_field(parent, last) or "message"] = reason
            body: dict[str, Any] = inner
            for part in reversed(outer):
                body = {part: body}
            return Reply(msgspec.json.encode(body), status)
        return Reply(msgspec.json.encode({"error": reason}), status)

    def refuse(self, reason: str, *, rule: str, path: str = "$", status: int = 200, kind: Kind = "invalid") -> Reply:
        """`error`, logged without values (reasons may quote message content)."""
        log.info("refused %s: rule=%s path=%s status=%s", self.iface.qualified_id, rule, path, status)
        return self.error(reason, kind=kind, status=status)

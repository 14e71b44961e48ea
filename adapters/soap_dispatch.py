"""Which interface a SOAP call is, and whether its parameters are valid: sans I/O.

One operation may carry several interfaces (xinjiang_mr ArchiveAutoReport .lab/.exam/.daily,
pe_system CallInterface for every service). `binding.soap.select` tells them apart: each key
names a parameter (or a dotted path into the XML a parameter carries, `msgHeader.serverName`)
and each value is either the expected text or, starting with `/`, an XPath that must match
inside the parameter's XML payload (`strReportInfo: /root/labmaster`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from lxml import etree

from adapters.wsdl import Operation, SoapService
from engine.errors import MessageError
from engine.spec.compiled import CompiledInterface
from engine.spec.model import Field
from engine.spec.nodes import Node
from engine.spec.validate import Issue, Walker
from engine.spec.xmlsafe import local, parse_xml


class NoMatch(Exception):
    """No interface of the operation matches the call; the reason says what was looked at."""


class _Payloads:
    """Parameters parsed as XML on first use (each at most once per call)."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.params = params
        self._roots: dict[str, etree._Element | MessageError] = {}

    def root(self, name: str) -> etree._Element | MessageError:
        got = self._roots.get(name)
        if got is None:
            try:
                got = parse_xml(self.params.get(name, "").encode("utf-8"))
            except MessageError as exc:
                got = exc
            self._roots[name] = got
        return got

    def value(self, key: str) -> str | None:
        """A parameter's text, or the text at `param.child.child` inside its XML."""
        name, _, rest = key.partition(".")
        if not rest:
            return self.params.get(name)
        el = self.root(name)
        if isinstance(el, MessageError):
            return None
        for part in rest.split("."):
            el = next((c for c in el if local(c.tag) == part), None)
            if el is None:
                return None
        return (el.text or "").strip()

    def describe(self, key: str, want: str) -> str:
        """What the call holds where `key` looks, for the refusal's reason."""
        head = key.partition(".")[0]
        if want.startswith("/") or "." in key:
            el = self.root(head)
            if isinstance(el, MessageError):
                return f"{head}: {el.reason}"
            if want.startswith("/"):
                inner = ", ".join(sorted({f"<{local(c.tag)}>" for c in el if isinstance(c.tag, str)})) or "nothing"
                return f"{key} holds <{local(el.tag)}> with {inner}"
        return f"{key} = {self.value(key)!r}"

    def matches(self, key: str, want: str) -> bool:
        if want.startswith("/"):
            el = self.root(key)
            return not isinstance(el, MessageError) and bool(el.getroottree().xpath(want))
        got = self.value(key)
        return got is not None if want == "*" else got == want  # "*": the element is present


def choose(op: Operation, params: Mapping[str, str]) -> CompiledInterface:
    """The interface this call is (raises NoMatch naming the selecting parameters)."""
    if len(op.interfaces) == 1 and not op.interfaces[0].spec.binding.soap.select:  # type: ignore[union-attr]
        return op.interfaces[0]
    p = _Payloads(params)
    for iface in op.interfaces:
        select = iface.spec.binding.soap.select or {}  # type: ignore[union-attr]
        if all(p.matches(k, v) for k, v in select.items()):
            return iface
    seen: dict[str, str] = {}
    for iface in op.interfaces:
        for k, want in (iface.spec.binding.soap.select or {}).items():  # type: ignore[union-attr]
            seen.setdefault(k, p.describe(k, want))
    wanted = "; ".join(f"{i.id}: {i.spec.binding.soap.select}" for i in op.interfaces)  # type: ignore[union-attr]
    raise NoMatch(f"no interface of operation {op.name} matches this call ({'; '.join(seen.values())}); expected one of {wanted}")


def _envelope_root(service: SoapService, iface: CompiledInterface) -> Node:
    """The operation's parameters as one object node, with the body parameter holding the interface's fields."""
    assert service.envelope is not None
    children = dict(service.envelope)
    bp = service.body_param
    if bp and bp in children and iface.request is not None:
        req = iface.request.node
        children[bp] = dataclasses.replace(children[bp], children=req.children, one_of=req.one_of, extra=req.extra)
    return Node(name="$", kind="object", spec=Field(), required=True, children=children)


def validate(service: SoapService, iface: CompiledInterface, params: Mapping[str, str], *, plaintext: bool) -> list[Issue]:
    """Every error in the call's parameters (XML payloads included), each naming its field."""
    if service.envelope is not None:
        w = Walker(lenient=True, plaintext=plaintext)
        w.run(_envelope_root(service, iface), dict(params))
        return w.errors
    if iface.request is None:
        return []
    return iface.request.validate(dict(params), plaintext=plaintext).errors

"""The SOAP service a platform's specs describe, and its WSDL (document/literal wrapped, strings).

Operations come from `binding.soap` of each interface. Their parameters are the platform's
`transport.soap_params` when one operation wraps every interface (pe_system
`CallInterface(msgHeader, msgBody)`), else the request fields of the interfaces bound to the
operation (xinjiang_mr `strReportInfo, strCredential, strKey`). Every parameter and every
result is an xs:string: XML payloads travel escaped inside them, as the documents say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from adapters.soap_envelope import Version
from engine.spec.compiled import CompiledInterface
from engine.spec.loader import PlatformSpec
from engine.spec.nodes import Node
from engine.spec.resolve import Resolver
from engine.spec.xmlsafe import parse_xml

DEFAULT_NAMESPACE = "http://tempuri.org/"
"""Used when the spec leaves transport.soap_namespace unset (the .NET default most of these services keep)."""

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(slots=True)
class Param:
    name: str
    required: bool
    title: str


@dataclass(eq=False)
class Operation:
    name: str
    result: str
    action: str
    params: list[Param] = field(default_factory=list)
    interfaces: list[CompiledInterface] = field(default_factory=list)

    @property
    def doc(self) -> str:
        return "; ".join(f"{i.id}: {i.spec.title}" for i in self.interfaces)


@dataclass(eq=False)
class SoapService:
    platform: PlatformSpec
    name: str
    namespace: str
    path: str
    versions: tuple[Version, ...]
    operations: dict[str, Operation]
    envelope: dict[str, Node] | None = None
    """Resolved `transport.soap_params` (pe_system), else None."""
    body_param: str | None = None


def _versions(setting: str | None) -> tuple[Version, ...]:
    return ("1.1",) if setting == "1.1" else ("1.2",) if setting == "1.2" else ("1.1", "1.2")


def envelope_nodes(ps: PlatformSpec, common_groups: Mapping[str, Any] | None = None) -> dict[str, Node] | None:
    """transport.soap_params resolved into Nodes (groups and platform defaults applied)."""
    params = ps.platform.transport.soap_params
    if not params:
        return None
    common = common_groups or {}
    extra = ps.platform.extra or "forbid"
    res = Resolver(lambda g: ps.groups.get(g) or common.get(g), lambda c: ps.codes.get(c), ps.platform.defaults, extra)
    return {n: res.field(n, f, ps.file, ("transport", "soap_params", n), extra) for n, f in params.items()}


def soap_service(ps: PlatformSpec, *, common_groups: Mapping[str, Any] | None = None, path: str | None = None) -> SoapService:
    t = ps.platform.transport
    name = t.soap_service or ps.id
    ns = t.soap_namespace or DEFAULT_NAMESPACE
    envelope = envelope_nodes(ps, common_groups)
    ops: dict[str, Operation] = {}
    setting = t.soap_version
    for iface in ps.interfaces.values():
        b = iface.spec.binding.soap if iface.spec.binding else None
        if b is None:
            continue
        setting = b.version or setting
        sep = "" if ns.endswith(("/", "#")) else "/"
        op = ops.setdefault(b.operation, Operation(b.operation, b.result or f"{b.operation}Result", b.action or f"{ns}{sep}{b.operation}"))
        op.interfaces.append(iface)
        if envelope is not None:
            continue
        known = {p.name for p in op.params}
        for pname, child in (iface.request.node.children or {}).items() if iface.request else ():
            if pname not in known:
                op.params.append(Param(pname, child.required, child.spec.title or ""))
                known.add(pname)
    if envelope is not None:
        for op in ops.values():
            op.params = [Param(n, node.required, node.spec.title or "") for n, node in envelope.items()]
    return SoapService(ps, name, ns, path or t.base_path or f"/services/{name}", _versions(setting), ops, envelope, t.soap_body_param)


def render_wsdl(service: SoapService, address: str) -> str:
    """The WSDL 1.1 document for `service`, with SOAP 1.1 and/or 1.2 bindings at `address`."""
    return _ENV.get_template("wsdl.xml.j2").render(s=service, ops=list(service.operations.values()), address=address)


def namespace_of(wsdl: bytes) -> str:
    """targetNamespace of a live WSDL (a client follows the deployed service, not our default)."""
    return parse_xml(wsdl).get("targetNamespace") or DEFAULT_NAMESPACE

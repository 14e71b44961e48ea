"""SOAP inbound (a platform's service, its WSDL at `?wsdl`) and the outbound SOAP client.

Inbound: POST an envelope (1.1 or 1.2, answered in the same version) to the service path. The
operation picks the candidate interfaces, `select` picks one (soap_dispatch), its parameters
(and the XML they carry) are validated, and the Sink gets the parameters. The Sink's Reply body
is the operation's string result; a reply with status >= 500 becomes a Receiver fault.
Envelope-level problems (not XML, a DOCTYPE, not an Envelope, unknown operation, oversize or
slow body) are SOAP faults; a well-formed call with bad content gets the platform's own
`error:<reason>` string as its result, which is what the documents specify for failures.

`unwrap`, if given, turns the wire parameters into plaintext before selection and validation:
the runtime plugs the crypto profile in here (xinjiang_mr's SM4-encrypted payloads).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import hdrs, web

from adapters.base import InboundMessage, OutboundRequest, OutboundResponse, Sink
from adapters.http_client import SessionPool, fetch
from adapters.http_limits import Limits, Refusal, read_body, request_limit
from adapters.reply import reason_of
from adapters.soap_dispatch import NoMatch, choose, validate
from adapters.soap_envelope import (
    CONTENT_TYPE,
    SoapCall,
    SoapFault,
    Version,
    build_call,
    build_fault,
    build_result,
    fault_status,
    parse_call,
    parse_result,
)
from adapters.wsdl import SoapService, namespace_of, render_wsdl, soap_service
from engine.errors import UnknownInterface
from engine.spec.loader import PlatformSpec

log = logging.getLogger("specbridge.adapters")
Unwrap = Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, str]]]


def has_soap(ps: PlatformSpec) -> bool:
    return any(i.spec.binding is not None and i.spec.binding.soap is not None for i in ps.interfaces.values())


def _fault(fault: SoapFault, status: int | None = None) -> web.Response:
    return web.Response(
        body=build_fault(fault), status=status or fault_status(fault), headers={hdrs.CONTENT_TYPE: CONTENT_TYPE[fault.version]}
    )


def _guess_version(request: web.Request) -> Version:
    return "1.2" if "soap+xml" in request.headers.get(hdrs.CONTENT_TYPE, "") else "1.1"


class SoapRoutes:
    """A platform's SOAP service bound to a Sink: POST for calls, GET ?wsdl for the WSDL."""

    def __init__(
        self,
        platform: PlatformSpec,
        sink: Sink,
        *,
        limits: Limits | None = None,
        validate: bool = True,
        common_groups: Mapping[str, Any] | None = None,
        unwrap: Unwrap | None = None,
        path: str | None = None,
        error_prefix: str = "error:",
    ) -> None:
        self.service: SoapService = soap_service(platform, common_groups=common_groups, path=path)
        self.sink = sink
        self.limits = limits or Limits()
        self.validate = validate
        self.unwrap = unwrap
        self.error_prefix = error_prefix
        ifaces = [i for op in self.service.operations.values() for i in op.interfaces]
        self.limit = max((request_limit(i, self.limits.max_request_bytes) for i in ifaces), default=self.limits.max_request_bytes)
        self._wsdl: dict[str, bytes] = {}

    def add_to(self, app: web.Application) -> None:
        app.router.add_get(self.service.path, self.wsdl)
        app.router.add_post(self.service.path, self.call)

    async def wsdl(self, request: web.Request) -> web.Response:
        if not any(k.lower() == "wsdl" for k in request.query):
            return web.Response(status=404, text="append ?wsdl for the service description")
        address = f"{request.scheme}://{request.host}{self.service.path}"
        body = self._wsdl.get(address)
        if body is None:
            body = self._wsdl[address] = render_wsdl(self.service, address).encode("utf-8")
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: "text/xml; charset=utf-8"})

    async def call(self, request: web.Request) -> web.Response:
        try:
            raw = await read_body(request, self.limit, self.limits.read_timeout_s)
        except Refusal as r:
            log.info("refused SOAP call to %s: rule=%s status=%s", self.service.name, r.rule, r.status)
            return _fault(SoapFault(r.reason, version=_guess_version(request)), r.status)
        try:
            soap = parse_call(raw)
        except SoapFault as f:
            if not f.version_known:  # answer in the version the Content-Type suggests
                code = "VersionMismatch" if f.code == "VersionMismatch" else None
                f = SoapFault(f.reason, version=_guess_version(request), code=code)
            log.info("SOAP fault on %s: %s", self.service.name, f.code)
            return _fault(f)
        if soap.version not in self.service.versions:
            reason = f"SOAP {soap.version} is not offered by {self.service.name}"
            return _fault(SoapFault(reason, version=soap.version, code="VersionMismatch"))
        op = self.service.operations.get(soap.operation)
        if op is None:
            known = ", ".join(self.service.operations)
            return _fault(SoapFault(f"unknown operation {soap.operation} of {self.service.name} (known: {known})", version=soap.version))
        params: Mapping[str, str] = soap.params
        plain = params
        if self.unwrap is not None:
            try:
                plain = await self.unwrap(soap.operation, params)
            except Exception as exc:  # a payload that does not decrypt is the caller's error
                return self._error(soap, f"parameters could not be decrypted: {type(exc).__name__}")
        try:
            iface = choose(op, plain)
        except NoMatch as exc:
            return self._error(soap, str(exc))
        if self.validate:
            errors = validate(self.service, iface, plain, plaintext=self.unwrap is not None)
            if errors:
                log.info("refused %s: rule=%s path=%s", iface.qualified_id, errors[0].rule, errors[0].path)
                return self._error(soap, reason_of(errors))
        meta: dict[str, Any] = {"peer": request.remote, "transport": "soap", "soap_version": soap.version, "operation": soap.operation}
        if self.unwrap is not None:
            meta["plaintext"] = dict(plain)
        msg = InboundMessage(iface.qualified_id, dict(params), dict(request.headers), meta=meta)
        try:
            reply = await self.sink(msg)
        except Exception:
            log.exception("sink failed on %s", iface.qualified_id)
            return _fault(SoapFault("internal error while handling the call", sender=False, version=soap.version))
        text = reply.body.decode("utf-8", errors="replace")
        if reply.status >= 500:
            return _fault(SoapFault(text, sender=False, version=soap.version))
        return self._result(soap, text)

    def _result(self, soap: SoapCall, text: str) -> web.Response:
        op = self.service.operations[soap.operation]
        body = build_result(soap.version, self.service.namespace, op.name, op.result, text)
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE[soap.version]})

    def _error(self, soap: SoapCall, reason: str) -> web.Response:
        return self._result(soap, f"{self.error_prefix}{reason}")


class SoapOutbound:
    """Calls one platform's SOAP operations at `url` (string parameters in, string result out).

    The response body is the operation's result string; a fault answers with the fault reason as
    body and its code in the `X-Soap-Fault` header (the platform answered: not a TransportError).
    """

    def __init__(
        self,
        platform: PlatformSpec,
        url: str,
        *,
        version: Version = "1.1",
        namespace: str | None = None,
        pool: SessionPool | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.service = soap_service(platform)
        self.url = url
        self.version: Version = version
        self.namespace = namespace or self.service.namespace
        self._own = pool is None
        self.pool = pool or SessionPool(limits)

    async def discover(self, timeout_s: float = 10.0) -> None:
        """Follow the live WSDL's targetNamespace (the documents leave it to the deployment)."""
        resp = await fetch(self.pool, "GET", self.url, params={"wsdl": ""}, timeout_s=timeout_s)
        self.namespace = namespace_of(resp.body)

    async def send(self, request: OutboundRequest) -> OutboundResponse:
        iid = request.interface.rpartition("/")[2]
        op = next((o for o in self.service.operations.values() for i in o.interfaces if i.id == iid), None)
        if op is None:
            raise UnknownInterface(f"{request.interface} has no SOAP binding on platform {self.service.platform.id}")
        action = op.action if self.namespace == self.service.namespace else f"{self.namespace.rstrip('/')}/{op.name}"
        body = build_call(self.version, self.namespace, op.name, dict(request.params))
        headers = dict(request.headers)
        if self.version == "1.1":
            headers.update({hdrs.CONTENT_TYPE: CONTENT_TYPE["1.1"], "SOAPAction": f'"{action}"'})
        else:
            headers[hdrs.CONTENT_TYPE] = f'application/soap+xml; charset=utf-8; action="{action}"'
        resp = await fetch(self.pool, "POST", self.url, data=body, headers=headers, timeout_s=request.timeout_s)
        try:
            text = parse_result(resp.body, op.name)
        except SoapFault as f:
            return OutboundResponse(resp.status, f.reason.encode("utf-8"), {**resp.headers, "X-Soap-Fault": f.code}, resp.elapsed_s)
        return OutboundResponse(resp.status, text.encode("utf-8"), resp.headers, resp.elapsed_s)

    async def close(self) -> None:
        if self._own:
            await self.pool.close()

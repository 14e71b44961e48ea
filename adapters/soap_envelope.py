"""SOAP 1.1 and 1.2 envelopes, sans I/O: parse a call, build calls, results and faults.

Document/literal wrapped, string parameters only: the body holds one element named after the
operation whose children are its parameters; the answer is `<OpResponse><OpResult>`. Parsing
goes through the hardened `parse_xml` (no DTD, no entities, no network).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lxml import etree

from engine.errors import MessageError, SpecbridgeError
from engine.spec.xmlsafe import local, parse_xml

Version = Literal["1.1", "1.2"]
ENV_NS: dict[Version, str] = {"1.1": "http://schemas.xmlsoap.org/soap/envelope/", "1.2": "http://www.w3.org/2003/05/soap-envelope"}
VERSION_OF = {ns: v for v, ns in ENV_NS.items()}
CONTENT_TYPE: dict[Version, str] = {"1.1": "text/xml; charset=utf-8", "1.2": "application/soap+xml; charset=utf-8"}


class SoapFault(SpecbridgeError):
    """A fault to answer (inbound) or that was answered (outbound)."""

    def __init__(
        self, reason: str, *, sender: bool = True, version: Version = "1.1", code: str | None = None, version_known: bool = True
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.version_known = version_known
        """False when the envelope could not be read far enough to tell 1.1 from 1.2."""
        self.sender = sender
        self.version = version
        self.code = code or (("Client" if sender else "Server") if version == "1.1" else ("Sender" if sender else "Receiver"))


@dataclass(slots=True)
class SoapCall:
    version: Version
    operation: str
    namespace: str | None
    params: dict[str, str]


def _inner(el: etree._Element) -> str:
    """A parameter's string value; a client that sent unescaped XML gets its markup back as text."""
    if len(el) == 0:
        return el.text or ""
    return (el.text or "") + "".join(etree.tostring(c, encoding="unicode") for c in el)


def _envelope(raw: bytes) -> tuple[Version, etree._Element]:
    try:
        root = parse_xml(raw)
    except MessageError as exc:
        raise SoapFault(exc.reason, version_known=False) from None
    ns = root.tag[1:].partition("}")[0] if isinstance(root.tag, str) and root.tag.startswith("{") else ""
    if local(root.tag) != "Envelope" or ns not in VERSION_OF:
        found = f"<{local(root.tag)}> in namespace {ns or 'none'}"
        raise SoapFault(f"expected a SOAP 1.1 or 1.2 Envelope, found {found}", code="VersionMismatch", version_known=False)
    version = VERSION_OF[ns]
    body = root.find(f"{{{ns}}}Body")
    if body is None:
        raise SoapFault("SOAP Envelope has no Body", version=version)
    return version, body


def parse_call(raw: bytes) -> SoapCall:
    """The operation and its string parameters from a request envelope (raises SoapFault)."""
    version, body = _envelope(raw)
    op = next((c for c in body if isinstance(c.tag, str)), None)
    if op is None:
        raise SoapFault("SOAP Body holds no operation element", version=version)
    ns = op.tag[1:].partition("}")[0] if op.tag.startswith("{") else None
    params = {local(c.tag): _inner(c) for c in op if isinstance(c.tag, str)}
    return SoapCall(version, local(op.tag), ns, params)


def _env(version: Version) -> tuple[etree._Element, etree._Element]:
    ns = ENV_NS[version]
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soap": ns})
    return env, etree.SubElement(env, f"{{{ns}}}Body")


def _wrapper(version: Version, ns: str, name: str, children: dict[str, str]) -> bytes:
    env, body = _env(version)
    el = etree.SubElement(body, f"{{{ns}}}{name}", nsmap={"tns": ns})
    for k, v in children.items():
        etree.SubElement(el, f"{{{ns}}}{k}").text = v
    return etree.tostring(env, encoding="utf-8", xml_declaration=True)


def build_call(version: Version, ns: str, operation: str, params: dict[str, str]) -> bytes:
    return _wrapper(version, ns, operation, params)


def build_result(version: Version, ns: str, operation: str, result: str, text: str) -> bytes:
    return _wrapper(version, ns, f"{operation}Response", {result: text})


def build_fault(fault: SoapFault) -> bytes:
    env, body = _env(fault.version)
    ns = ENV_NS[fault.version]
    f = etree.SubElement(body, f"{{{ns}}}Fault")
    if fault.version == "1.1":
        etree.SubElement(f, "faultcode").text = f"soap:{fault.code}"
        etree.SubElement(f, "faultstring").text = fault.reason
    else:
        code = etree.SubElement(f, f"{{{ns}}}Code")
        etree.SubElement(code, f"{{{ns}}}Value").text = f"soap:{fault.code}"
        reason = etree.SubElement(f, f"{{{ns}}}Reason")
        text = etree.SubElement(reason, f"{{{ns}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = fault.reason
    return etree.tostring(env, encoding="utf-8", xml_declaration=True)


def fault_status(fault: SoapFault) -> int:
    """SOAP 1.1 faults travel with HTTP 500; 1.2 Sender faults with 400 (SOAP 1.2 part 2, 7.5.1)."""
    return 400 if fault.version == "1.2" and fault.sender else 500


def parse_result(raw: bytes, operation: str) -> str:
    """The string result of `<operation>Response`, or SoapFault if the answer is a fault."""
    version, body = _envelope(raw)
    el = next((c for c in body if isinstance(c.tag, str)), None)
    if el is None:
        raise SoapFault("SOAP answer has an empty Body", version=version)
    if local(el.tag) == "Fault":
        if version == "1.1":
            code = el.findtext("faultcode") or "Server"
            reason = el.findtext("faultstring") or ""
        else:
            ns = ENV_NS["1.2"]
            code = el.findtext(f"{{{ns}}}Code/{{{ns}}}Value") or "Receiver"
            reason = el.findtext(f"{{{ns}}}Reason/{{{ns}}}Text") or ""
        code = code.rpartition(":")[2]
        raise SoapFault(reason, sender=code in ("Client", "Sender"), version=version, code=code)
    if local(el.tag) != f"{operation}Response":
        raise SoapFault(f"expected <{operation}Response>, found <{local(el.tag)}>", sender=False, version=version)
    res = next((c for c in el if isinstance(c.tag, str)), None)
    return _inner(res) if res is not None else ""

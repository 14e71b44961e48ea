"""Every bound interface of every platform, sans I/O: the spec's first valid request example gets the
documented success (or, for a query with nothing stored, its documented `empty` code), and every
answer validates against the interface's own response spec. Crypto off: the examples are plaintext."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from adapters.base import Attachment
from engine.spec import SpecSet
from engine.spec.paths import MISSING, get
from engine.twin.core import PlatformTwin, TwinOptions, TwinRequest

PLATFORMS = ["city_lab_mr", "xinjiang_mr", "pe_system", "wedoctor_supervision", "jilin_imaging"]
STORES_FIRST = ("store", "token")


def _ok(twin: PlatformTwin, iid: str, reply_body: bytes, headers: dict[str, str]) -> bool:
    rule = twin.ifaces[iid].replies.rule
    if rule is None or rule.prefix is not None:
        return reply_body.decode("utf-8", "replace").lstrip().startswith(rule.prefix if rule and rule.prefix else "ok")
    if rule.header:
        return headers.get(rule.header) in (rule.in_ or [])
    got = get(msgspec.json.decode(reply_body), rule.field or "")
    return got is not MISSING and str(got) in (rule.in_ or [])


def _request(twin: PlatformTwin, iid: str, token: str | None) -> TwinRequest | None:
    it = twin.ifaces[iid].iface
    b = it.spec.binding
    if b is None or (b.http is None and b.soap is None):
        return None
    ex = next((e for e in it.spec.examples or () if e.part == "request" and e.valid and e.body is not None), None)
    if ex is None:
        return None
    headers: dict[str, str] = dict(ex.headers or {})
    auth = twin.ps.platform.auth
    if token and auth is not None and auth.carry is not None and auth.carry.in_ == "header":
        headers[auth.carry.name] = token
    for name, want in (it.fixed_headers or {}).items():
        headers[name] = want
    if b.http is None:  # SOAP only: the SOAP adapter has validated; the twin gets the parameters
        body: Any = ex.body
        if twin.ps.platform.transport.soap_body_param:
            fields = "".join(f"<{k}>{v}</{k}>" for k, v in ex.body.items())
            body = {"msgHeader": "<root/>", "msgBody": f"<root>{fields}</root>"}
        return TwinRequest(iid, body, headers, transport="soap", plaintext=body)
    files = [Attachment(n, f"{n}.pdf", "application/pdf", 9, data=b"%PDF-1.4\n")
             for n, node in (it.request.node.children or {}).items() if node.kind == "file"] if it.request else []
    if b.http.method == "GET":
        return TwinRequest(iid, {}, headers, method="GET", query={k: str(v) for k, v in ex.body.items()})
    if files or (it.request is not None and it.request.format in ("form", "multipart")):
        return TwinRequest(iid, {k: v for k, v in ex.body.items() if k not in {f.name for f in files}}, headers, files)
    return TwinRequest(iid, msgspec.json.encode(ex.body), headers)


@pytest.mark.parametrize("pid", PLATFORMS)
def test_every_example_gets_the_documented_success(specs: SpecSet, pid: str) -> None:
    twin = PlatformTwin(specs.platforms[pid], TwinOptions(use_crypto=False))
    token = None
    if twin.authority is not None:
        got = twin.authority.issue(twin.authority.credentials)
        assert isinstance(got, str) and got not in ("bad_credentials", "locked", "cap")
        token = got
    order = sorted(twin.ifaces, key=lambda i: twin.ifaces[i].twin.action not in STORES_FIRST)
    tried = 0
    for iid in order:
        req = _request(twin, iid, token)
        if req is None:
            continue
        tried += 1
        reply = twin.handle(req)
        it = twin.ifaces[iid]
        ok = _ok(twin, iid, reply.body, dict(reply.headers))
        empty = it.twin.empty
        answered_empty = empty is not None and (empty.encode() in reply.body or empty in reply.headers.values())
        assert ok or answered_empty, f"{pid}/{iid}: {reply.body[:300]!r} {reply.headers}"
    assert tried >= 3
    assert twin.stats()["reply_errors"] == {}, twin.stats()["reply_errors"]

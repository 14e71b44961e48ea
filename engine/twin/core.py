"""The platform twin, sans I/O: one request in, the platform's answer out.

Order per request, as a platform gateway would do it: fault injection (`fail_every`), crypto
(open the envelope, verify, decrypt fields), decode, token check, strict validation of headers and
body, then the interface's `twin:` action (store, query, delete, token, echo, accept) and its reply
template, sealed again for the response. Every decision comes from the spec; the serving glue
(engine.twin.serve) only moves bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from adapters.base import Attachment, Reply
from adapters.reply import reason_of
from engine.crypto.errors import CryptoError, ReplayError, SignatureError
from engine.crypto.profile import CryptoProfile, compile_profile
from engine.errors import SpecbridgeError
from engine.spec.compiled import CompiledInterface
from engine.spec.loader import PlatformSpec
from engine.spec.model import Twin, TwinAuthCodes, TwinSource
from engine.spec.nodes import Node
from engine.spec.paths import MISSING, get, natural_keys, present, relative, values
from engine.twin.decode import open_carried, soap_body
from engine.twin.keys import fill_secrets
from engine.twin.lint import lint_platform
from engine.twin.replies import Replies, Transport
from engine.twin.store import Record, Store
from engine.twin.template import Context, matches, render, window
from engine.twin.tokens import TokenAuthority

log = logging.getLogger("specbridge.twin")
ACCEPT = Twin(action="accept")


class TwinConfigError(SpecbridgeError):
    """The twin cannot be built as asked (unknown platform, crypto profile without its keys...)."""


@dataclass
class TwinOptions:
    """Runtime options: never in the spec, because they describe a test, not the platform."""

    fail_every: int = 0
    """Answer every Nth business request (token calls excluded) with a retryable failure."""
    answer_delay_s: float = 0.0
    """Hold each answer this long after acting on the request (stored first): a platform slow to answer,
    whose caller may die before the answer arrives, leaving a delivery in doubt. Settable while serving."""
    credentials: Mapping[str, str] | None = None
    """Valid credential values; default: the token interface's first valid example."""
    state: str | Path | None = None
    """SQLite file for the records and counters (default: memory only)."""
    crypto: CryptoProfile | None = None
    """A crypto profile to apply instead of the platform's own `crypto:`."""
    secrets: Mapping[str, str | bytes] = field(default_factory=dict)
    """Keys for the crypto profile (the twin is the platform: it holds the private keys)."""
    use_crypto: bool = True
    """False: serve plaintext even when the platform has a crypto profile (benches, first integration)."""
    generate_keys: bool = True
    """Make the key pairs and shared secrets `secrets` lacks (see engine.twin.keys)."""
    clock: Callable[[], float] = time.time
    id_base: int = 10**16


@dataclass
class TwinRequest:
    """One received request, as the serving glue hands it over."""

    interface: str
    """Interface id within the platform (`savePatientExam`)."""
    body: bytes | Mapping[str, Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    transport: Transport = "http"
    method: str = "POST"
    query: Mapping[str, str] = field(default_factory=dict)
    plaintext: Mapping[str, str] | None = None
    """SOAP: the parameters after the crypto unwrap (already validated by the SOAP adapter)."""
    session: Any = None
    """The crypto session of an unwrapped SOAP call (its key seals the answer)."""


class Refused(Exception):
    """Stop handling and answer this (a platform error reply)."""

    def __init__(self, reply: Reply, kind: str) -> None:
        super().__init__(kind)
        self.reply = reply
        self.kind = kind


@dataclass(eq=False)
class _Iface:
    iface: CompiledInterface
    twin: Twin
    replies: Replies

    @property
    def id(self) -> str:
        return self.iface.id


def _default_credentials(ps: PlatformSpec) -> dict[str, str]:
    auth = ps.platform.auth
    tok = ps.interfaces.get(auth.interface or "") if auth is not None else None
    for ex in tok.spec.examples or () if tok is not None else ():
        if ex.part == "request" and ex.valid and isinstance(ex.body, dict):
            return {n: str(ex.body[n]) for n in auth.credentials or () if n in ex.body}  # type: ignore[union-attr]
    return {}


def _code_node(ps: PlatformSpec) -> Node | None:
    """The node of the platform's success field in the first response that declares it."""
    rule = ps.platform.success
    if rule is None or rule.field is None:
        return None
    for i in ps.interfaces.values():
        node = i.response.node if i.response is not None else None
        for part in rule.field.split("."):
            node = (node.children or {}).get(part) if node is not None else None
        if node is not None:
            return node
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


class PlatformTwin:
    """A stand-in of one platform: its interfaces, state, token authority and counters."""

    def __init__(self, ps: PlatformSpec, options: TwinOptions | None = None) -> None:
        self.ps = ps
        self.options = opts = options or TwinOptions()
        self.store = Store(opts.state, id_base=opts.id_base)
        code_node = _code_node(ps)
        self.ifaces = {iid: _Iface(i, i.spec.twin or ACCEPT, Replies(i, code_node)) for iid, i in ps.interfaces.items()}
        auth = ps.platform.auth
        self.token_iface = auth.interface if auth is not None and auth.kind == "token" else None
        tok = self.ifaces.get(self.token_iface or "")
        self.codes: TwinAuthCodes = (tok.twin.codes if tok is not None else None) or TwinAuthCodes()
        self.authority: TokenAuthority | None = None
        if auth is not None and self.token_iface:
            creds = dict(opts.credentials) if opts.credentials is not None else _default_credentials(ps)
            self.authority = TokenAuthority(auth, creds, opts.clock)
        profile = (opts.crypto or ps.platform.crypto) if opts.use_crypto else None
        self.crypto = None
        self.client_secrets: dict[str, str | bytes] = {}
        self.secrets: dict[str, str | bytes] = dict(opts.secrets)
        """Every key the twin holds (private ones included): to restart a twin as the same platform."""
        if profile is not None:
            secrets, self.client_secrets = fill_secrets(profile, opts.secrets) if opts.generate_keys else (dict(opts.secrets), {})
            self.secrets = dict(secrets)
            try:
                self.crypto = compile_profile(profile, secrets, role="platform")
            except CryptoError as exc:
                raise TwinConfigError(f"{ps.id}: crypto profile cannot be used by the twin: {exc}") from None
        self.served = 0
        self._sealed_cache: dict[str, bool] = {}
        self.findings = lint_platform(ps)
        for f in self.findings:
            log.warning("%s", f)

    # -- the request path ----------------------------------------------------------------------
    def handle(self, req: TwinRequest) -> Reply:
        it = self.ifaces.get(req.interface)
        if it is None:
            return Reply(f"error:unknown interface {req.interface}".encode(), 404, "text/plain; charset=utf-8")
        qid = it.id
        self.store.bump("requests", qid)
        try:
            if it.twin.action != "token" and self.options.fail_every > 0:
                self.served += 1
                if self.served % self.options.fail_every == 0:
                    self.store.bump("injected", qid)
                    return it.replies.unavailable(transport=req.transport)
            reply = self._handle(it, req)
        except Refused as r:
            self.store.bump("errors", qid, r.kind)
            return r.reply
        return reply

    def _refuse(self, it: _Iface, code: str | None, reason: str, kind: str, req: TwinRequest) -> Refused:
        log.info("twin %s/%s refused (%s): %s", self.ps.id, it.id, kind, reason)
        return Refused(it.replies.error(code, reason, transport=req.transport), f"{kind}:{code}")

    def _handle(self, it: _Iface, req: TwinRequest) -> Reply:
        obj, raw_for_validation, session, decrypted = self._decode(it, req)
        if it.twin.action != "token":
            self._check_token(it, req, obj)
        if req.transport == "http" and it.iface.request is not None:
            res = it.iface.validate_request(raw_for_validation, dict(req.headers), plaintext=decrypted)
            if not res.valid:
                raise self._refuse(it, it.replies.invalid_code, reason_of(res.errors), "invalid", req)
        if req.transport == "soap" and self.ps.platform.transport.soap_body_param:
            record = soap_body(it.iface.request.node if it.iface.request else None,
                               str(obj.get(self.ps.platform.transport.soap_body_param, "")))
        else:
            record = open_carried(it.iface.request.node if it.iface.request else None, obj)
        reply = self._act(it, req, record)
        if reply.status < 300:
            self._self_check(it, reply)
        if self.crypto is not None and session is not None and reply.status < 300:
            sealed = self.crypto.seal_response(reply.body, dict(reply.headers), session=session)
            reply = Reply(sealed.body, reply.status, reply.content_type, {**reply.headers, **sealed.headers})
        return reply

    def _decode(self, it: _Iface, req: TwinRequest) -> tuple[Any, Any, Any, bool]:
        """(decoded request, what to validate, crypto session, whether fields were decrypted)."""
        session = req.session
        decrypted = req.plaintext is not None
        if req.transport == "soap":
            params = dict(req.plaintext if req.plaintext is not None else req.body)  # type: ignore[arg-type]
            return params, params, session, decrypted
        body = req.body
        headers = dict(req.headers)
        cp = self.crypto
        if cp is not None and self._sealed(it) and (cp.env is not None or cp.signer is not None or cp.replay is not None or cp.steps):
            try:
                params = {k: v for k, v in body.items() if isinstance(v, str)} if isinstance(body, Mapping) else None
                opened = cp.open_request(body if isinstance(body, bytes) else b"", headers, params)
            except CryptoError as exc:
                raise self._refuse(it, self._crypto_code(it, exc), str(exc), "crypto", req) from None
            session = opened.session
            decrypted = cp.env is not None
            body = opened.body if isinstance(body, bytes) else {**body, **opened.params}
        fmt = it.iface.request.format if it.iface.request is not None else "json"
        if req.method == "GET":
            obj: Any = dict(req.query)
        elif isinstance(body, Mapping):
            obj = dict(body)
            for a in req.attachments:
                obj[a.name] = a.as_field()
        elif fmt == "json" and body:
            try:
                obj = msgspec.json.decode(body)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                raise self._refuse(it, it.replies.invalid_code, f"not valid JSON: {exc}", "invalid", req) from None
        else:
            obj = body or {}
        if cp is not None and cp.field_cipher is not None and isinstance(obj, (dict, list)):
            try:
                obj = cp.decrypt_fields(obj)
                decrypted = True
            except CryptoError as exc:
                raise self._refuse(it, self._crypto_code(it, exc), str(exc), "crypto", req) from None
        return obj, obj, session, decrypted

    def _sealed(self, it: _Iface) -> bool:
        """Whether this interface's requests carry the envelope/signature: they declare at least one of
        the profile's carried values (a token call that declares no headers carries none)."""
        if it.id in self._sealed_cache:
            return self._sealed_cache[it.id]
        prof = self.crypto.profile if self.crypto is not None else None
        carries = []
        if prof is not None:
            if prof.envelope is not None and prof.envelope.wrap is not None:
                carries.append(prof.envelope.wrap.carry)
            if prof.signature is not None:
                carries.append(prof.signature.carry)
            if prof.anti_replay is not None:
                carries.append(prof.anti_replay.nonce)
        declared: set[str] = set()
        for body in (it.iface.headers, it.iface.request):
            declared.update(n.lower() for n in ((body.node.children or {}) if body is not None else {}))
        sealed = not carries or any(c.name.lower() in declared for c in carries)
        self._sealed_cache[it.id] = sealed
        return sealed

    def _crypto_code(self, it: _Iface, exc: CryptoError) -> str | None:
        hints = ("replay",) if isinstance(exc, ReplayError) else ("tamper", "sign") if isinstance(exc, SignatureError) else ("encrypt",)
        for code, e in it.replies.errors.items():
            if e.action != "ok" and any(h in (e.en or "").lower() for h in hints):
                return code
        return it.replies.invalid_code

    def _check_token(self, it: _Iface, req: TwinRequest, obj: Any) -> None:
        auth = self.ps.platform.auth
        if self.authority is None or auth is None or auth.carry is None:
            return
        carry = auth.carry
        if carry.in_ == "header":
            token = _header(req.headers, carry.name)
        elif carry.in_ == "query":
            token = req.query.get(carry.name)
        else:
            got = get(obj, carry.name)
            token = got if isinstance(got, str) else None
        why = self.authority.check(token)
        if why is not None:
            code = getattr(self.codes, why) or it.replies.reauth_code()
            raise self._refuse(it, code, f"token {why}", why, req)

    # -- actions ---------------------------------------------------------------------------
    def _act(self, it: _Iface, req: TwinRequest, record: Any) -> Reply:
        t = it.twin
        ctx = Context(record)
        if t.action == "token":
            return self._token(it, req, record, ctx)
        if t.action == "store":
            recs = self._store(it, req, record)
            ctx.results["records"] = recs
            if recs:
                ctx = ctx.record(recs[0])
        elif t.action == "delete":
            gone = self._delete(it, req, record)
            ctx.results["records"] = gone
            if gone:
                ctx = ctx.record(gone[0])
        elif t.action == "query":
            sources = t.sources or {"records": TwinSource(collection=t.collection or it.id, match=t.match, within=t.within)}
            for name, src in sources.items():
                inside = window(src.within, record, self.options.clock()) if src.within is not None else None
                ctx.results[name] = self.store.find(
                    src.collection, lambda r, m=src.match, w=inside: matches(r.data, r.id, record, m) and (w is None or w(r.data)))
            if t.empty is not None and not any(ctx.results.values()):
                raise self._refuse(it, t.empty, "", "empty", req)
            first = next((rs[0] for rs in ctx.results.values() if rs), None)
            if first is not None:  # top-level `$.` is the first record found
                ctx = ctx.record(first)
        if t.action in ("store", "delete", "accept"):
            for key in natural_keys(record, it.iface.spec.key) or [""]:
                self.store.bump("deliveries", it.id, key)
        return it.replies.success(render(t.reply, ctx) if t.reply is not None else None)

    def _records(self, it: _Iface, record: Any) -> tuple[list[dict[str, Any]], list[str] | None]:
        t = it.twin
        ikey = it.iface.spec.key
        if t.records:
            items = [v for v in values(record, t.records) if isinstance(v, dict)]
            key = t.key or ([relative(p, t.records) for p in ikey] if ikey else None)
            return items, key
        return ([record] if isinstance(record, dict) else []), (t.key or ikey)

    def _store(self, it: _Iface, req: TwinRequest, record: Any) -> list[Record]:
        t = it.twin
        items, key = self._records(it, record)
        out = []
        for item in items:
            data = dict(item)
            for a in req.attachments:
                data[a.name] = {"filename": a.filename, "content_type": a.content_type, "size": a.size, "data": a.read()}
            for name, join in (t.attach or {}).items():
                data[name] = [x for x in values(record, join.from_)
                              if isinstance(x, dict) and all(str(x.get(f)) == str(item.get(f)) for f in join.on)]
            k = "|".join(str(v) for v in (get(item, p) for p in key) if v is not MISSING) if key else None
            rec, _ = self.store.upsert(t.collection or it.id, k, data)
            out.append(rec)
        return out

    def _delete(self, it: _Iface, req: TwinRequest, record: Any) -> list[Record]:
        t = it.twin
        match = t.match or {p.rpartition(".")[2]: p for p in it.iface.spec.key or ()}
        if not any(present(v) for p in match.values() for v in values(record, p)):
            gone: list[Record] = []
        else:
            coll = t.collection or it.id
            gone = self.store.find(coll, lambda r: matches(r.data, r.id, record, match))
            self.store.delete(coll, gone)
        if not gone and t.empty is not None:
            raise self._refuse(it, t.empty, "", "empty", req)
        return gone

    def _token(self, it: _Iface, req: TwinRequest, record: Any, ctx: Context) -> Reply:
        auth = self.ps.platform.auth
        assert self.authority is not None and auth is not None
        got = self.authority.issue(record if isinstance(record, Mapping) else {})
        if got in ("bad_credentials", "locked", "cap"):
            code = getattr(self.codes, got) or it.replies.fatal_code()
            raise self._refuse(it, code, "", got, req)
        self.store.bump("tokens", it.id, "issued")
        ctx.token = got
        body = render(it.twin.reply, ctx) if it.twin.reply is not None else {}
        if auth.token_path and isinstance(body, dict) and get(body, auth.token_path) is MISSING:
            *outer, last = auth.token_path.split(".")
            target = body
            for part in outer:
                target = target.setdefault(part, {})
            target[last] = got
        return it.replies.success(body)

    def _self_check(self, it: _Iface, reply: Reply) -> None:
        """A twin's answers must be valid by its own spec: count (and log) any that are not."""
        if it.iface.response is None:
            return
        res = it.iface.validate_response(reply.body, dict(reply.headers) if it.iface.response_headers else None)
        if not res.valid:
            self.store.bump("reply_errors", it.id)
            log.warning("twin %s/%s answer does not validate: %s", self.ps.id, it.id, reason_of(res.errors))

    # -- control ---------------------------------------------------------------------------
    def unwrap(self, params: Mapping[str, str]) -> tuple[dict[str, str], Any]:
        """SOAP: the plaintext parameters and the crypto session (raises CryptoError)."""
        if self.crypto is None:
            return dict(params), None
        opened = self.crypto.open_request(b"", {}, params)
        return opened.params, opened.session

    def stats(self) -> dict[str, Any]:
        c = self.store.counters
        deliveries = c.get("deliveries", {})
        out: dict[str, Any] = {
            "platform": self.ps.id,
            "requests": {k: v.get("", 0) for k, v in c.get("requests", {}).items()},
            "deliveries": {k: dict(v) for k, v in deliveries.items()},
            "delivered": {k: len(v) for k, v in deliveries.items()},
            "duplicates": {k: dup for k, v in deliveries.items() if (dup := sorted(key for key, n in v.items() if n > 1))},
            "injected": {k: v.get("", 0) for k, v in c.get("injected", {}).items()},
            "errors": {k: dict(v) for k, v in c.get("errors", {}).items()},
            "reply_errors": {k: v.get("", 0) for k, v in c.get("reply_errors", {}).items()},
            "records": {name: len(coll) for name, coll in self.store.collections.items()},
        }
        if self.authority is not None:
            out["tokens"] = {"issued_today": self.authority.issued_today, "live": len(self.authority.tokens)}
        return out

    def reset(self) -> None:
        self.store.reset()
        self.served = 0
        if self.authority is not None:
            self.authority.reset()

    def client_secrets_text(self) -> dict[str, str]:
        return {k: v if isinstance(v, str) else v.hex() for k, v in self.client_secrets.items()}

    def advance(self, seconds: float) -> None:
        """Move the twin's clock (token lifetimes, lock-outs, daily caps) forward."""
        if self.authority is not None:
            self.authority.advance(seconds)

    def close(self) -> None:
        self.store.close()


"""Synchronous query routes (`reply: sync`): the source's call waits for the platform's answer.

A doctor opening a patient asks city_lab_mr HR01 whether there are recognisable reports; the
answer is worth something now and nothing later. So the HIS's HTTP call is held open while the
bridge translates the question (keeping each intermediate message), journals it held (the audit
trail and the idempotency key; no delivery loop can claim it, see `Journal.receive_held`), sends it
at once through the target's TargetClient (envelope, token, crypto), judges the answer, records
the attempt, translates the answer back up the response mappings (`part: response` then
`to_part: response`) and returns it as the HTTP response, in the source's own format.

Failures are answered at once in the source's error format (its spec's codes: bad input, the
platform refused, no answer in time) and the message goes DEAD with the reason: a query is never
retried later, since no caller would read that answer. The same holds for a query whose holder
died (a crash while it was in flight): when its lease runs out the delivery loop marks it DEAD
`query: caller gone` instead of sending it (`drop_orphan`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from adapters.base import Reply
from adapters.reply import ReplyBuilder, _find, _message_field, _typed
from engine.auth import AuthError, TokenCapReached
from engine.bridge.model import Bridge, Route, RouteTarget
from engine.errors import Finding
from engine.journal import Attempt, Incoming, Message
from engine.plugins.errors import ExtensionError
from engine.spec.compiled import CompiledInterface
from engine.spec.loader import SpecSet
from engine.translate import MappingSet, NoRoute, TranslateError, Translator

if TYPE_CHECKING:
    from engine.runtime.bridge import BridgeRuntime
    from engine.runtime.target import Result

log = logging.getLogger("specbridge.runtime")

CALLER_GONE = "query: caller gone (the bridge stopped while the query was in flight); a query is not sent again"
Failure = Literal["invalid", "internal", "refused", "timeout"]
_HINTS: dict[str, tuple[str, ...]] = {"refused": ("refused",), "timeout": ("in time", "timed out")}
"""Which code of a source's table answers a platform failure, matched on the code's `en` text."""
_LEASE_MARGIN_S = 60.0


_index: tuple[Bridge, dict[str, Route], frozenset[str]] | None = None


def _sync_index(bridge: Bridge) -> tuple[dict[str, Route], frozenset[str]]:
    """The bridge's query routes by source, and their ids: asked on every record and every delivery,
    so worked out once per Bridge object. A hot-reload swap installs a new Bridge object
    (BridgeRuntime.swap replaces runtime.bridge, never edits it), which is what makes this stale-proof:
    the next call sees another object and works it out again."""
    global _index
    memo = _index
    if memo is None or memo[0] is not bridge:
        by_source: dict[str, Route] = {}
        for r in bridge.routes:
            if r.reply == "sync":
                by_source.setdefault(r.source, r)
        memo = _index = (bridge, by_source, frozenset(r.id for r in bridge.routes if r.reply == "sync"))
    return memo[1], memo[2]


def sync_route(bridge: Bridge, source: str) -> Route | None:
    """The source's query route, if it has one (check_bridge makes it the source's only route)."""
    return _sync_index(bridge)[0].get(source)


def _is_sync(bridge: Bridge, route_id: str | None) -> bool:
    return route_id is not None and route_id in _sync_index(bridge)[1]


async def drop_orphan(runtime: BridgeRuntime, m: Message) -> bool:
    """A delivery loop claimed a query (its holder died, or an operator replayed it): DEAD, not sent."""
    if not _is_sync(runtime.bridge, m.route):
        return False
    assert runtime.journal is not None
    await runtime.journal.mark_dead(m.id, CALLER_GONE, attempt=Attempt("fatal", "query", error=CALLER_GONE), lease=m.lease)
    runtime.stats.dead[m.target] = runtime.stats.dead.get(m.target, 0) + 1
    runtime.metrics.dead(m.target, m.interface, m.route, "query")
    return True


# -- checks (specbridge run refuses a bridge that fails them) --------------------------------------
def check_sync_routes(bridge: Bridge, specset: SpecSet, path: str, mappings: MappingSet | None = None) -> list[Finding]:
    out: list[Finding] = []
    for r in bridge.routes:
        if r.reply != "sync":
            continue
        where = f"route `{r.id}`: reply: sync"
        src = bridge.sources.get(r.source)
        if src is not None and src.adapter != "http_json":
            out.append(Finding(path, 1, f"{where} needs a source that waits for an answer (http_json), not {src.adapter} `{r.source}`"))
        if len(r.to) != 1 or r.to[0].when is not None:
            out.append(Finding(path, 1, f"{where} sends each query to exactly one target, unconditionally (found {len(r.to)} in `to`)"))
        others = [o.id for o in bridge.routes if o.source == r.source and o is not r]
        if others:
            feeds = ", ".join(others)
            out.append(Finding(path, 1, f"{where}: source `{r.source}` gets one answer per call, so it cannot also feed {feeds}"))
        if r.reply_timeout_s is not None and r.reply_timeout_s <= 0:
            out.append(Finding(path, 1, f"{where}: reply_timeout_s must be positive"))
        if mappings is None or src is None or src.spec is None or len(r.to) != 1:
            continue
        t = bridge.targets.get(r.to[0].target)
        if t is None or t.platform not in specset.platforms or r.to[0].interface not in specset.platforms[t.platform].interfaces:
            continue  # reported by check_bridge
        tref = f"{t.platform}/{r.to[0].interface}"
        try:
            if not r.to[0].mapping:
                mappings.route(src.spec, tref)
            mappings.route(f"{tref}#response", f"{src.spec}#response")
        except NoRoute:
            what = "" if r.to[0].mapping else f"from {src.spec} to {tref} and "
            out.append(Finding(path, 1, f"{where} needs a mapping chain {what}from the {tref} response to the {src.spec} response"
                                        " (mappings with `part: response` ... `to_part: response`)"))
    return out


# -- answering --------------------------------------------------------------------------------------
class _Replies:
    """The source's answers, in its own format: the translated answer under its success code, or an
    error code from its spec's table with the reason."""

    def __init__(self, iface: CompiledInterface | None) -> None:
        self.iface = iface
        self.builder = ReplyBuilder(iface) if iface is not None else None
        rule = (iface.spec.success or iface.platform.success) if iface is not None else None
        self.field = rule.field if rule is not None and rule.field and rule.in_ else None
        self.ok_code = rule.in_[0] if rule is not None and rule.in_ else None
        self.errors = {**(iface.platform.errors or {}), **(iface.spec.errors or {})} if iface is not None else {}

    def _place(self, code: str, message: str | None) -> dict[str, Any]:
        """{code: .., message: ..} at the success rule's field (typed as the response spec says)."""
        if self.field is None or self.iface is None:
            return {}
        node = self.iface.response.node if self.iface.response else None
        parent, leaf = _find(node, self.field)
        *outer, last = self.field.split(".")
        inner: dict[str, Any] = {last: _typed(code, leaf)}
        if message:
            inner[_message_field(parent, last) or "message"] = message
        body: dict[str, Any] = inner
        for part in reversed(outer):
            body = {part: body}
        return body

    def ok(self, answer: dict[str, Any]) -> Reply:
        head = self._place(self.ok_code, self.errors[self.ok_code].message if self.ok_code in self.errors else None) if self.ok_code else {}
        return Reply(msgspec.json.encode({**head, **answer}))

    def error(self, kind: Failure, reason: str) -> Reply:
        if kind in _HINTS and self.field is not None:
            hints = _HINTS[kind]
            code = next((c for c, e in self.errors.items() if e.action != "ok" and any(h in (e.en or "").lower() for h in hints)), None)
            if code is not None:
                return Reply(msgspec.json.encode(self._place(code, reason)))
        if self.builder is None:
            return Reply(msgspec.json.encode({"error": reason}), 502)
        return self.builder.error(reason, kind="invalid" if kind == "invalid" else "internal")


def _request_steps(runtime: BridgeRuntime, source_spec: str | None, route: Route, to: RouteTarget, tref: str) -> list[Translator]:
    """The translators `BridgeRuntime.translate` applies, as a list (their intermediates answer `request`)."""
    m = runtime.mappings
    if to.mapping:
        return ([m.get(route.mapping)] if route.mapping else []) + [m.get(to.mapping)]
    if source_spec is None:
        return []
    return list(m.route(source_spec, tref).steps)


def _translate_back(runtime: BridgeRuntime, iface: CompiledInterface, source_spec: str, value: Any,
                    seen: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The platform's answer up the response chain; each step's `request` is the request-side message
    at its target (the canonical question, then the source's own request). Also the answer's findings."""
    res = iface.response.validate(value) if iface.response is not None else None
    if res is not None and res.value is None and res.errors:  # not even decodable: nothing to translate
        raise TranslateError(f"unreadable answer: {res.errors[0].message}")
    tree = res.value if res is not None else value
    findings = [f"{i.path}: {i.rule}" for i in res.errors[:5]] if res is not None else []
    msg: Any = tree
    for step in runtime.mappings.route(f"{iface.qualified_id}#response", f"{source_spec}#response").steps:
        msg = step.translate(msg, request=seen.get(step.target.ref))
    return msg, findings


@dataclasses.dataclass(slots=True)
class _Held:
    """One journalled query and how its attempt is recorded: with the lease when held, else (a
    duplicate already SENT or in flight elsewhere) as one more attempt of the existing message."""

    runtime: BridgeRuntime
    id: int
    lease: str | None
    target: str
    interface: str
    route: str

    async def sent(self, att: Attempt) -> None:
        rt, j = self.runtime, self.runtime.journal
        assert j is not None
        await (j.record_attempt(self.id, att) if self.lease is None else j.mark_sent(self.id, attempt=att, lease=self.lease))
        rt.stats.sent[self.target] = rt.stats.sent.get(self.target, 0) + 1
        rt.metrics.sent(self.target, self.interface, self.route)

    async def dead(self, reason: str, att: Attempt, stage: str) -> None:
        rt, j = self.runtime, self.runtime.journal
        assert j is not None
        await (j.record_attempt(self.id, att) if self.lease is None else j.mark_dead(self.id, reason, attempt=att, lease=self.lease))
        rt.stats.dead[self.target] = rt.stats.dead.get(self.target, 0) + 1
        rt.metrics.dead(self.target, self.interface, self.route, stage)


async def answer(runtime: BridgeRuntime, source: str, route: Route, record: Any) -> Reply:
    """Journal, send and answer one query (the sink of a `reply: sync` route's source)."""
    from engine.runtime.bridge import natural_key  # bridge.py imports this module

    j = runtime.journal
    assert j is not None
    src = runtime.bridge.sources[source]
    to = route.to[0]
    client = runtime.targets[to.target]
    iface = client.platform.interfaces[to.interface]
    qid = iface.qualified_id
    replies = _Replies(runtime.specset.interface(src.spec) if src.spec else None)
    timeout = route.reply_timeout_s or client.target.timeout_s
    raw = msgspec.json.encode(record)
    runtime.stats.received += 1
    runtime.metrics.received(source)

    seen: dict[str, Any] = {src.spec: record} if src.spec else {}
    msg: Any = record
    problem: tuple[Failure, str, str] | None = None  # (answer kind, journal reason, attempt stage)
    try:
        for step in _request_steps(runtime, src.spec, route, to, qid):
            msg = step.translate(msg)
            seen[step.target.ref] = msg
        translated: bytes | None = msgspec.json.encode(msg)
        key = natural_key(iface, msg, raw)
    except (TranslateError, NoRoute) as exc:
        translated, key = None, "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
        problem = ("invalid", f"translation: {exc}", "translate")
    receipt, lease = await j.receive_held(Incoming(qid, to.target, raw, key, route.id, translated), lease_s=timeout + _LEASE_MARGIN_S)
    held = _Held(runtime, receipt.id, lease, to.target, qid, route.id)
    if problem is None and route.id in runtime.paused:
        problem = ("refused", f"query: route {route.id} is paused by an operator", "paused")
    if problem is None and iface.request is not None and iface.request.format == "json":
        check = iface.validate_request(msg, plaintext=True)
        if not check.valid:
            problem = ("invalid", f"invalid for {qid}: " + "; ".join(f"{e.path}: {e.rule}" for e in check.errors[:5]), "validate")
    if problem is not None:
        kind, reason, stage = problem
        await held.dead(reason, Attempt("fatal", stage, error=reason), stage)
        return replies.error(kind, reason)

    try:
        res = await asyncio.wait_for(client.send(iface, msg), timeout)
    except TimeoutError:
        told = f"{qid} did not answer within {timeout:g} s"
        reason = f"query: {told}; the caller was told so (not retried: no one would read the answer)"
        await held.dead(reason, Attempt("timeout", "query", error=reason), "timeout")
        return replies.error("timeout", told)
    except (TokenCapReached, AuthError) as exc:
        if not isinstance(exc, TokenCapReached):
            log.error("ALARM: %s", exc)
        await held.dead(f"query: {exc}", Attempt("fatal", "token", error=str(exc)), "token")
        return replies.error("refused", f"{qid}: {exc}")
    except ExtensionError as exc:  # a plugin's signer, step or transport misbehaved: named, DEAD, the caller told
        await held.dead(f"query: {exc}", Attempt("fatal", "plugin", error=str(exc)), "plugin")
        return replies.error("refused", f"{qid}: {exc}")
    runtime.metrics.attempted(to.target, res.duration_ms)
    att = _attempt(res)
    if res.outcome.action not in ("ok", "empty"):
        await held.dead(f"query: {res.outcome.reason} (the caller was told; a query is not retried)", att, "platform")
        return replies.error("timeout" if res.outcome.reason.startswith("timeout") else "refused", f"{qid} answered: {res.outcome.reason}")
    try:
        back, findings = _translate_back(runtime, iface, src.spec or "", res.verdict.value if res.verdict else None, seen)
    except (TranslateError, NoRoute) as exc:
        await held.sent(dataclasses.replace(att, error=f"answer not translated back: {exc}"[:1000]))
        return replies.error("refused", f"the answer of {qid} could not be translated: {exc}")
    if findings:
        log.warning("query answer of %s does not follow its spec: %s", qid, "; ".join(findings))
    await held.sent(att)
    return replies.ok(back)


def _attempt(res: Result) -> Attempt:
    body = res.response.body[:2048] if res.response is not None else None
    return Attempt(res.outcome.action, res.prepared.summary if res.prepared else "", res.response.status if res.response else None,
                   res.verdict.code if res.verdict else None, body, res.duration_ms,
                   None if res.outcome.action == "ok" else res.outcome.reason)

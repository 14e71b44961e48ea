"""Exactly-once across a crash, where the platform can be asked.

A message is in doubt (`Message.in_doubt`) when a delivery of it may have reached the platform with no
outcome recorded: its sender was killed, or stopped, mid-send. Before it goes out again, `settle` asks the
platform with the query its interface's `reconcile:` names, built from the request as it would be sent
(the spec's mapping) and sent through the same TargetClient (token, envelope, field encryption), the way
payment systems resolve an in-doubt transaction by an inquiry before any resend:

- found (an answer record whose `match` fields equal the request's): SENT, nothing sent again;
- not found (an `empty` code such as jilin's 404, or no matching record): sent as usual, once;
- the query fails: retried later (the runtime's retry policy), still in doubt.

Where the platform cannot be asked (no `reconcile:`, a later version of a key, a request the query cannot
be built from) the message is sent again, at-least-once, and its journal says "in doubt: resent".
Each case is counted in `specbridge_in_doubt_total{target, interface, outcome}`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.auth import AuthError, TokenCapReached
from engine.journal import Attempt, Message
from engine.plugins.errors import ExtensionError
from engine.retry import decide
from engine.spec.compiled import CompiledInterface
from engine.spec.model import Reconcile
from engine.spec.paths import get, present, values
from engine.translate import NoRoute, TranslateError

if TYPE_CHECKING:
    from engine.runtime.bridge import BridgeRuntime
    from engine.runtime.target import TargetClient

log = logging.getLogger("specbridge.runtime")


def found(rc: Reconcile, answer: Any, sent: Mapping[str, Any]) -> bool:
    """Whether the query's answer holds the delivery: a record whose `match` fields all equal the sent
    request's (compared as text: a platform may answer "1" for 1). A field the request lacks matches nothing."""
    want: list[tuple[str, str]] = []
    for field, path in rc.match.items():
        v = get(sent, path)
        if not present(v):
            return False
        want.append((field, str(v)))
    records = values(answer, rc.records) if rc.records else [answer]
    return any(isinstance(r, dict) and all(str(get(r, f)) == v for f, v in want) for r in records)


def cannot_ask(rc: Reconcile | None, m: Message) -> str | None:
    """Why this in-doubt message cannot be reconciled (then it is resent), or None."""
    if rc is None:
        return f"{m.interface} declares no reconcile: the platform cannot be asked"
    if m.version > 1:
        return f"version {m.version} of its key: the platform's answer tells an earlier one is there, not which"
    return None


def build_query(rt: BridgeRuntime, client: TargetClient, rc: Reconcile, msg: Any) -> tuple[CompiledInterface, Any] | str:
    """The query interface and message, or why they cannot be had (a reason naming fields, never values)."""
    query = client.platform.interfaces.get(rc.query)
    if query is None:
        return f"{client.platform.id} has no interface `{rc.query}`"
    try:
        q = rt.mappings.get(rc.mapping).translate(msg)
    except (NoRoute, TranslateError) as exc:
        return f"cannot build {rc.query}: {exc}"
    if query.request is not None and query.request.format == "json":
        check = query.validate_request(q, plaintext=True)
        if not check.valid:
            return f"cannot ask {rc.query}: " + "; ".join(f"{e.path}: {e.rule}" for e in check.errors[:5])
    return query, q


async def settle(rt: BridgeRuntime, target: str, m: Message, client: TargetClient, iface: CompiledInterface, msg: Any) -> bool:
    """An in-doubt message, about to be sent: True when settled here (found on the platform: SENT; the
    query failed: retry later, still in doubt), False when the caller sends it (not found, or the
    platform cannot be asked: the journal and the metrics say which)."""
    assert rt.journal is not None
    j = rt.journal
    rc = iface.spec.reconcile
    why = cannot_ask(rc, m)
    built = build_query(rt, client, rc, msg) if rc is not None and why is None else why
    if rc is None or isinstance(built, str):
        await _note(rt, target, m, "resent", f"in doubt: resent ({built})")
        log.warning("in doubt: sent again, at-least-once (%s)", built)
        return False
    assert built is not None
    query, q = built
    now = rt.clock()
    try:
        res = await client.send(query, q)
    except TokenCapReached as exc:
        return await _failed(rt, target, m, rc, Attempt("wait", "token", error=str(exc)), str(exc), exc.resets_at)
    except AuthError as exc:
        log.error("ALARM: %s", exc)
        return await _failed(rt, target, m, rc, Attempt("reauth", "token", error=str(exc)), str(exc), now + 300)
    except ExtensionError as exc:
        return await _failed(rt, target, m, rc, Attempt("fatal", "plugin", error=str(exc)), str(exc), None)
    rt.metrics.attempted(target, res.duration_ms)
    summary = res.prepared.summary if res.prepared else rc.query
    status = res.response.status if res.response is not None else None
    code = res.verdict.code if res.verdict is not None else None
    action = res.outcome.action
    if action == "ok" and res.verdict is not None and found(rc, res.verdict.value, msg):
        said = f"reconciled: found on the platform by {rc.query}"
        # no body: the answer lists the patient's exams, more than the journal needs to keep
        await j.mark_sent(m.id, attempt=Attempt("reconciled", summary, status, code, None, res.duration_ms, said), lease=m.lease)
        rt.stats.sent[target] = rt.stats.sent.get(target, 0) + 1
        rt.metrics.sent(target, m.interface, m.route)
        rt.metrics.in_doubt(target, m.interface, "reconciled")
        log.info("in doubt: %s, not sent again", said)
        return True
    if action in ("ok", "empty"):
        said = f"in doubt: not found on the platform by {rc.query}: sending"
        await j.record_attempt(m.id, Attempt("in_doubt", summary, status, code, None, res.duration_ms, said), lease=m.lease)
        rt.metrics.in_doubt(target, m.interface, "not_found")
        log.info("in doubt: not found on the platform by %s, sending", rc.query)
        return False
    d = decide(rt._policy(target), res.outcome, attempts=m.attempts + 1, cycle_at=m.cycle_at, now=rt.clock(), reauthed=res.reauthed)
    att = Attempt(action, summary, status, code, None, res.duration_ms, f"in doubt: {rc.query} failed: {res.outcome.reason}")
    at = None if d.kind == "dead" else (d.next_attempt_at or rt.clock() + 1)
    return await _failed(rt, target, m, rc, att, d.reason, at)


async def _failed(rt: BridgeRuntime, target: str, m: Message, rc: Reconcile, att: Attempt, reason: str, at: float | None) -> bool:
    """The query got no usable answer: retry at `at` (DEAD when None), still in doubt either way, so a
    retry or a replay asks again before anything is sent."""
    assert rt.journal is not None
    why = f"in doubt: {rc.query} failed: {reason}"
    if at is None:
        await rt.journal.mark_dead(m.id, why, attempt=att, lease=m.lease, in_doubt=True)
        rt.stats.dead[target] = rt.stats.dead.get(target, 0) + 1
        rt.metrics.dead(target, m.interface, m.route, "reconcile")
        log.warning("dead: %s", why)
    else:
        await rt.journal.schedule_retry(m.id, at, why, attempt=att, lease=m.lease, in_doubt=True)
        rt._falls_due(target, at)
        rt.stats.retried += 1
        rt.metrics.retried(target, m.interface, m.route, att.outcome)
        log.warning("retry scheduled: %s", why)
    rt.metrics.in_doubt(target, m.interface, "query_failed")
    return True


async def _note(rt: BridgeRuntime, target: str, m: Message, outcome: str, said: str) -> None:
    """An attempt that tells operators what became of the doubt (the send that follows is its own attempt)."""
    assert rt.journal is not None
    await rt.journal.record_attempt(m.id, Attempt("in_doubt", "-", error=said), lease=m.lease)
    rt.metrics.in_doubt(target, m.interface, outcome)

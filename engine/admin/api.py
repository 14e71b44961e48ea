"""The admin API (under /api/, bearer token): search and show messages, replay, pause and resume
routes, routes with their rates, errors by reason. JSON in and out through msgspec.

Bad input is a 400 naming the field; an unknown message or route a 404; a replay the journal
refuses (in flight, superseded) a 409 with the journal's reason. Text that may echo patient data
(errors, platform replies, payloads) goes through `redact` before it leaves.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from engine.admin.metrics import LiveCollector, RouteActivity
from engine.errors import UnknownInterface
from engine.journal import JournalError, Message, State, Summary, UnknownMessage, redact
from engine.runtime.bridge import BridgeRuntime

RUNTIME = web.AppKey("runtime", BridgeRuntime)
LIVE = web.AppKey("live", LiveCollector)

PAYLOAD_CHARS = 20_000
ERROR_SAMPLE = 1000
"""Errors by reason are grouped over the newest this-many ERROR and DEAD messages: bounded work at any journal size."""


class BadRequest(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), status=status, content_type="application/json")


def error(status: int, message: str, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status)


_AT = re.compile(r"`\$\.([A-Za-z_]+)`|unknown field `([^`]+)`")


def _convert(data: Any, tp: type[Any], where: str) -> Any:
    try:
        return msgspec.convert(data, tp, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _AT.search(text)
        raise BadRequest((m.group(1) or m.group(2)) if m else None, f"{where}: {text}") from None


async def _body(request: web.Request, tp: type[Any]) -> Any:
    raw = await request.read()
    if not raw.strip():
        return _convert({}, tp, "body")
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest(None, f"body: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadRequest(None, "body: expected a JSON object")
    return _convert(data, tp, "body")


def _when(value: str | None, field: str) -> float | None:
    """Epoch seconds, or an ISO 8601 date/time (local time when it names no zone)."""
    if value is None or value == "":
        return None
    try:
        t = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(t):
            raise BadRequest(field, f"{field}: {value!r} is not a time")
        return t
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise BadRequest(field, f"{field}: {value!r} is neither epoch seconds nor an ISO 8601 time") from None


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise BadRequest("id", f"id: {raw!r} is not a message id")
    return int(raw)


# -- shapes ----------------------------------------------------------------------------------------
class SearchQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    state: State | None = None
    interface: str | None = None
    target: str | None = None
    key: str | None = None
    since: str | None = None
    until: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    cursor: Annotated[int, msgspec.Meta(ge=1)] | None = None
    order: Literal["newest", "oldest"] = "newest"


class ReplayBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    retranslate: bool = True
    """Back to RECEIVED so the (fixed) mapping runs again; false resends the stored translation."""
    force: bool = False
    """Replay a superseded version too (it would overwrite newer data on the platform)."""


class ReplayDeadBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    interface: str
    target: str | None = None
    retranslate: bool = True


class ErrorsQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    sample: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = ERROR_SAMPLE


def summary(h: Summary) -> dict[str, Any]:
    return {"id": h.id, "interface": h.interface, "target": h.target, "state": h.state.value, "key": h.key, "version": h.version,
            "created_at": h.created_at, "updated_at": h.updated_at, "next_attempt_at": h.next_attempt_at, "attempts": h.attempts,
            "last_error": redact(h.last_error) if h.last_error else None, "in_doubt": h.in_doubt}


def detail(m: Message) -> dict[str, Any]:
    def text(b: bytes | None) -> str | None:
        return None if b is None else redact(b, limit=PAYLOAD_CHARS)

    return {"id": m.id, "interface": m.interface, "target": m.target, "route": m.route, "state": m.state.value, "key": m.key,
            "version": m.version, "created_at": m.created_at, "updated_at": m.updated_at, "cycle_at": m.cycle_at,
            "next_attempt_at": m.next_attempt_at, "leased": m.lease is not None, "attempts": m.attempts,
            "last_error": redact(m.last_error) if m.last_error else None, "superseded_by": m.superseded_by, "in_doubt": m.in_doubt,
            "source": text(m.source), "translated": text(m.translated),
            "history": [{"n": a.n, "started_at": a.started_at, "duration_ms": a.duration_ms, "request": a.request, "status": a.status,
                         "code": a.code, "outcome": a.outcome, "error": redact(a.error) if a.error else None,
                         "body": redact(a.body, limit=2000) if a.body else None} for a in m.history]}


_VOLATILE = (re.compile(r"#\d+"), re.compile(r"\d{5,}"))


def reason_of(text: str | None) -> str:
    """An error's reason with per-message details (message numbers, long ids) blanked, so alike errors group."""
    out = redact(text or "(no reason recorded)", limit=300)
    out = _VOLATILE[0].sub("#…", out)
    return _VOLATILE[1].sub("…", out)


# -- handlers --------------------------------------------------------------------------------------
async def overview(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    snap = await request.app[LIVE].refresh()
    return json_response({"bridge": rt.bridge.id, "title": rt.bridge.title, "ready": rt.not_ready() is None, "reason": rt.not_ready(),
                          "received": rt.stats.received, "journal": {"rows": snap.rows, "db_bytes": snap.db_bytes,
                                                                     "wal_bytes": snap.wal_bytes, "by_interface": snap.by_interface},
                          "paused": sorted(rt.paused), "now": time.time()})


def _route(rt: BridgeRuntime, route_id: str, by_interface: dict[str, dict[str, int]]) -> dict[str, Any]:
    route = next(r for r in rt.bridge.routes if r.id == route_id)
    act = rt.metrics.routes.get(route.id)
    now = rt.metrics.clock()
    targets = []
    for to in route.to:
        qualified = f"{rt.bridge.targets[to.target].platform}/{to.interface}"
        targets.append({"target": to.target, "interface": qualified, "states": by_interface.get(qualified, {})})
    if act is None:
        act = RouteActivity()
    return {"id": route.id, "source": route.source, "note": route.note, "paused": route.id in rt.paused, "targets": targets,
            "sent": act.sent, "failed": act.failed, "sent_per_min": act.sent_rate.per_minute(now),
            "failed_per_min": act.failed_rate.per_minute(now)}


async def routes(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    snap = await request.app[LIVE].refresh()
    return json_response([_route(rt, r.id, snap.by_interface) for r in rt.bridge.routes])


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    rt = request.app[RUNTIME]
    route_id = request.match_info["route"]
    if not any(r.id == route_id for r in rt.bridge.routes):
        return error(404, f"no route `{route_id}` in bridge {rt.bridge.id}", field="route")
    await (rt.pause if paused else rt.resume)(route_id)
    snap = await request.app[LIVE].refresh()
    return json_response(_route(rt, route_id, snap.by_interface))


async def pause(request: web.Request) -> web.Response:
    return await _set_paused(request, True)


async def resume(request: web.Request) -> web.Response:
    return await _set_paused(request, False)


async def errors(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    assert rt.journal is not None
    q: ErrorsQuery = _convert(dict(request.query), ErrorsQuery, "query")
    groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for state in (State.ERROR, State.DEAD):
        for h in await rt.journal.search(state=state, limit=q.sample):
            reason = reason_of(h.last_error)
            g = groups.setdefault((state.value, h.interface, h.target, reason),
                                  {"state": state.value, "interface": h.interface, "target": h.target, "reason": reason,
                                   "count": 0, "latest_id": h.id, "latest_at": h.updated_at})
            g["count"] += 1
            if h.updated_at > g["latest_at"]:
                g["latest_id"], g["latest_at"] = h.id, h.updated_at
    out = sorted(groups.values(), key=lambda g: (-g["count"], g["state"], g["interface"]))
    return json_response({"sample": q.sample, "groups": out})


async def search(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    assert rt.journal is not None
    q: SearchQuery = _convert(dict(request.query), SearchQuery, "query")
    since, until = _when(q.since, "since"), _when(q.until, "until")
    hits = await rt.journal.search(state=q.state, interface=q.interface or None, target=q.target or None, key=q.key or None,
                                   since=since, until=until, after_id=q.cursor, limit=q.limit + 1, newest_first=q.order == "newest")
    more = len(hits) > q.limit
    hits = hits[: q.limit]
    return json_response({"items": [summary(h) for h in hits], "next_cursor": hits[-1].id if more and hits else None})


async def show(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    assert rt.journal is not None
    mid = _id(request)
    m = await rt.journal.get(mid)
    if m is None:
        return error(404, f"no message {mid} in the journal (never received, or pruned)", field="id")
    return json_response(detail(m))


async def replay(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    assert rt.journal is not None
    mid = _id(request)
    body: ReplayBody = await _body(request, ReplayBody)
    m = await rt.journal.get(mid)
    if m is None:
        return error(404, f"no message {mid} in the journal (never received, or pruned)", field="id")
    try:
        state = await rt.journal.replay(mid, retranslate=body.retranslate, force=body.force)
    except UnknownMessage as exc:
        return error(404, str(exc), field="id")
    except JournalError as exc:
        return error(409, str(exc))
    rt.wake(m.target)
    return json_response({"id": mid, "state": state.value, "paused": m.route in rt.paused})


async def replay_dead(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    assert rt.journal is not None
    body: ReplayDeadBody = await _body(request, ReplayDeadBody)
    try:
        rt.specset.interface(body.interface)
    except UnknownInterface:
        raise BadRequest("interface", f"interface: unknown interface {body.interface!r} (PLATFORM/INTERFACE)") from None
    if body.target is not None and body.target not in rt.bridge.targets:
        raise BadRequest("target", f"target: no target {body.target!r} in bridge {rt.bridge.id}")
    n = await rt.journal.replay_dead(body.interface, target=body.target, retranslate=body.retranslate)
    rt.wake(body.target)
    return json_response({"interface": body.interface, "target": body.target, "replayed": n})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/overview", overview)
    r.add_get("/api/routes", routes)
    r.add_post("/api/routes/{route}/pause", pause)
    r.add_post("/api/routes/{route}/resume", resume)
    r.add_get("/api/errors", errors)
    r.add_get("/api/messages", search)
    r.add_get("/api/messages/{id}", show)
    r.add_post("/api/messages/{id}/replay", replay)
    r.add_post("/api/replay-dead", replay_dead)

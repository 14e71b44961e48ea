"""Journal, retry policy and token manager together, as a sender loop would use them (fake clock):
a target down for a while, a token rejected mid-flight, a fatal answer, then replay after a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.auth import TokenManager
from engine.journal import Attempt, Journal, Message, State
from engine.retry import RetryPolicy, classify, decide
from engine.spec.model import ErrorCode
from tests.journal.support import Clock

ERRORS = {"400": ErrorCode(message="入参不规范", action="fatal"), "403": ErrorCode(message="授权校验失败", action="reauth")}
POLICY = RetryPolicy(base_s=1, factor=2, max_delay_s=60, max_attempts=20, max_age_s=86400)


class Twin:
    """A platform stand-in: down until `up_at`, rejects token tok1 once, answers 400 to 'bad' bodies."""

    def __init__(self, clock: Clock, up_at: float) -> None:
        self.clock, self.up_at = clock, up_at
        self.tokens = 0
        self.delivered: list[bytes] = []

    async def fetch_token(self) -> tuple[str, float | None]:
        self.tokens += 1
        return f"tok{self.tokens}", None

    def post(self, token: str, body: bytes) -> tuple[int, str]:
        if self.clock.t < self.up_at:
            raise ConnectionRefusedError("down")
        if token == "tok1":
            return 200, "403"
        if body == b"bad":
            return 200, "400"
        self.delivered.append(body)
        return 200, "200"


async def send(j: Journal, tm: TokenManager, twin: Twin, m: Message, clock: Clock, reauthed: bool = False) -> None:
    token = await tm.get()
    try:
        status, code = twin.post(token, m.source or b"")
        outcome = classify(status=status, code=code, success=code == "200", errors=ERRORS)
    except OSError as exc:
        status, code, outcome = None, None, classify(error=exc)
    d = decide(POLICY, outcome, attempts=m.attempts + 1, cycle_at=m.cycle_at, now=clock.t, reauthed=reauthed, rand=lambda: 1.0)
    att = Attempt(outcome.action, "POST /upload", status, code)
    if d.kind == "reauth":
        await j.record_attempt(m.id, att, lease=m.lease)
        tm.invalidate(token)
        again = await j.get(m.id)
        assert again is not None
        await send(j, tm, twin, again, clock, reauthed=True)
    elif d.kind == "sent":
        await j.mark_sent(m.id, attempt=att, lease=m.lease)
    elif d.kind == "retry":
        assert d.next_attempt_at is not None
        await j.schedule_retry(m.id, d.next_attempt_at, d.reason, attempt=att, lease=m.lease)
    else:
        await j.mark_dead(m.id, d.reason, attempt=att, lease=m.lease)


@pytest.mark.asyncio
async def test_down_target_drains_rejected_token_refreshes_once_fatal_goes_dead(tmp_path: Path) -> None:
    clock = Clock()
    twin = Twin(clock, up_at=clock.t + 100)
    async with await Journal.open(str(tmp_path / "j.db"), clock=clock) as j:
        tm = TokenManager("twin", twin.fetch_token, lifetime_s=7200, store=j, clock=clock)
        ids = [(await j.receive("p/upload", "twin", f"r{i}".encode(), key=f"r{i}")).id for i in range(5)]
        bad = (await j.receive("p/upload", "twin", b"bad", key="bad")).id
        delays: list[float] = []
        for _ in range(50):
            if not (await j.search(state=State.ERROR) or await j.search(state=State.RECEIVED)):
                break
            for m in await j.claim_due("twin", 50):
                await send(j, tm, twin, m, clock)
            waiting = await j.search(state=State.ERROR, limit=1)
            if waiting and waiting[0].next_attempt_at is not None:
                delays.append(waiting[0].next_attempt_at - clock.t)
                clock.t = waiting[0].next_attempt_at
        assert delays[:6] == [1, 2, 4, 8, 16, 32]  # growing while the target is down (jitter pinned to 1)
        assert sorted(twin.delivered) == [f"r{i}".encode() for i in range(5)]
        assert twin.tokens == 2  # tok1 rejected once, refreshed once for everyone
        assert [(await j.get(i)).state for i in ids] == [State.SENT] * 5  # type: ignore[union-attr]
        dead = await j.get(bad)
        assert dead is not None and dead.state is State.DEAD and dead.last_error == "400 入参不规范"
        assert dead.history[-1].outcome == "fatal"
        outcomes = [a.outcome for i in [*ids, bad] for a in (await j.get(i)).history]  # type: ignore[union-attr]
        assert outcomes.count("reauth") == 1 and outcomes.count("ok") == 5

        await j.replay(bad)  # "after a fix": here the twin accepts it once the body is corrected
        twin.delivered.clear()
        (m,) = await j.claim_due("twin", 50)
        assert m.attempts == 0 and m.state is State.RECEIVED
        await j.mark_translated(m.id, b"fixed", lease=m.lease)
        await j.mark_sent(m.id, attempt=Attempt("ok", "POST /upload", 200, "200"), lease=m.lease)
        assert (await j.stats()) == {"p/upload": {"SENT": 6}}

"""Retry policy as pure functions: classify what one attempt got, then decide what happens next.

The runtime does the I/O; these only turn (outcome, attempts, age, now) into SENT / retry at T /
reauth now / DEAD, deterministic given the injected random source. A sender's loop, in short:

    for m in await journal.claim_due(target, 50):
        outcome = classify(status=..., code=..., success=..., errors=spec_errors)   # or error=exc
        d = decide(policy, outcome, attempts=m.attempts + 1, cycle_at=m.cycle_at, now=clock())
        att = Attempt(outcome.action, request_summary, status, code, body, duration_ms)
        sent -> journal.mark_sent(m.id, attempt=att, lease=m.lease)
        retry -> journal.schedule_retry(m.id, d.next_attempt_at, d.reason, attempt=att, lease=m.lease)
        dead -> journal.mark_dead(m.id, d.reason, attempt=att, lease=m.lease)
        reauth -> journal.record_attempt(...); tokens.invalidate(token); resend once, decide(..., reauthed=True)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from engine.journal.redact import redact

Action = Literal["ok", "retry", "reauth", "wait", "fatal", "empty"]
Rand = Callable[[], float]


class _ErrorCode(Protocol):
    """What we read of `engine.spec.model.ErrorCode`."""

    message: str
    action: Action


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with equal jitter (`backoff_s`), bounded by attempts and by age (whichever first).

    `wait_s` is the pause after a quota answer (action wait); quota waits do not use up attempts,
    only age, since a daily cap says nothing about the message.
    """

    base_s: float = 2.0
    factor: float = 2.0
    max_delay_s: float = 600.0
    max_attempts: int = 12
    max_age_s: float = 3 * 86400.0
    wait_s: float | None = None

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.factor < 1 or self.max_delay_s < self.base_s:
            raise ValueError("RetryPolicy needs base_s > 0, factor >= 1, max_delay_s >= base_s")
        if self.max_attempts < 1 or self.max_age_s <= 0:
            raise ValueError("RetryPolicy needs max_attempts >= 1 and max_age_s > 0")


def backoff_s(policy: RetryPolicy, attempt: int, rand: Rand = random.random) -> float:
    """Delay after failed attempt number `attempt` (1-based): "equal jitter", uniform in [d/2, d]
    with d = min(cap, base*factor^(n-1)).

    The jitter half spreads a burst of failures (a platform that was down) so they do not come
    back in lock-step; the fixed half keeps delays growing from one attempt to the next (with
    factor >= 2 each delay is at least the previous one's ceiling), which full jitter does not:
    an operator watching a message in ERROR sees it back off, not flicker."""
    exp = min(attempt - 1, 64)
    ceiling = min(policy.max_delay_s, policy.base_s * policy.factor**exp)
    return ceiling / 2 + ceiling / 2 * rand()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got, as an action, with a reason fit for the journal and for logs."""

    action: Action
    reason: str


_OK = Outcome("ok", "ok")


def classify(
    *,
    error: BaseException | None = None,
    status: int | None = None,
    code: str | None = None,
    success: bool | None = None,
    errors: Mapping[str, _ErrorCode] | None = None,
    message: str | None = None,
    unknown_code: Action = "fatal",
) -> Outcome:
    """Classify an attempt.

    error: the transport failed (connection, TLS, timeout): always retry, nothing was delivered
    for sure and the platform may come back. A known platform code decides by its spec action;
    then `success` (the spec's SuccessRule verdict); then HTTP status: 401 reauth, 429 wait,
    408/425/5xx retry, other 4xx fatal (the same body cannot succeed). An unknown code gets
    `unknown_code` (fatal by default, matching ErrorCode's default: DEAD is replayable, a retry
    loop on an unknown answer only hides it).
    """
    if error is not None:
        kind = "timeout" if isinstance(error, TimeoutError) else "transport"
        return Outcome("retry", redact(f"{kind}: {type(error).__name__}: {error}", limit=300))
    if code is not None and errors and code in errors:
        known = errors[code]
        detail = f" {redact(message, limit=200)}" if message else ""
        return Outcome(known.action, f"{code} {known.message}{detail}".rstrip())
    if success:
        return _OK  # most answers: nothing to redact or format
    detail = f" {redact(message, limit=200)}" if message else ""
    if status is not None and not 200 <= status < 300:
        if status == 401:
            return Outcome("reauth", f"HTTP 401{detail}")
        if status == 429:
            return Outcome("wait", f"HTTP 429{detail}")
        if status in (408, 425) or status >= 500:
            return Outcome("retry", f"HTTP {status}{detail}")
        if code is None:
            return Outcome("fatal", f"HTTP {status}{detail}")
    if code is not None:
        return Outcome(unknown_code, f"unknown platform code {code}{detail}")
    if success is False:
        return Outcome(unknown_code, f"platform reported failure{detail}")
    return Outcome("ok", "ok")


@dataclass(frozen=True, slots=True)
class Decision:
    """sent: done. retry: schedule at next_attempt_at. reauth: refresh the token once, resend now.
    dead: give up with reason (replayable)."""

    kind: Literal["sent", "retry", "reauth", "dead"]
    reason: str = ""
    next_attempt_at: float | None = None


def decide(
    policy: RetryPolicy,
    outcome: Outcome,
    *,
    attempts: int,
    cycle_at: float,
    now: float,
    reauthed: bool = False,
    rand: Rand = random.random,
) -> Decision:
    """Next step after an attempt. `attempts` counts this one; `cycle_at` is when delivery began
    (created or replayed); `reauthed`: this attempt was already the resend after a token refresh,
    so a second rejection is not refreshed again (never loop on reauth)."""
    action = outcome.action
    if action in ("ok", "empty"):
        return Decision("sent", outcome.reason)
    if action == "fatal":
        return Decision("dead", outcome.reason)
    if action == "reauth" and not reauthed:
        return Decision("reauth", outcome.reason)
    deadline = cycle_at + policy.max_age_s
    if now >= deadline:
        return Decision("dead", f"gave up after {policy.max_age_s:.0f} s: {outcome.reason}")
    if action == "wait":
        pause = policy.wait_s if policy.wait_s is not None else policy.max_delay_s
        delay = pause * (0.5 + rand() / 2)
    else:
        if attempts >= policy.max_attempts:
            return Decision("dead", f"gave up after {attempts} attempts: {outcome.reason}")
        delay = backoff_s(policy, attempts, rand)
    reason = outcome.reason if action != "reauth" else f"rejected again after token refresh: {outcome.reason}"
    return Decision("retry", reason, min(now + delay, deadline))

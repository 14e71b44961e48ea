"""Retry policy: backoff, classification, decisions. Deterministic: the random source is injected."""

from __future__ import annotations

import pytest

from engine.retry import Decision, Outcome, RetryPolicy, backoff_s, classify, decide
from engine.spec.model import ErrorCode

P = RetryPolicy(base_s=2, factor=2, max_delay_s=100, max_attempts=5, max_age_s=1000)
ERRORS = {
    "200": ErrorCode(message="操作成功", action="ok"),
    "400": ErrorCode(message="入参不规范", action="fatal"),
    "403": ErrorCode(message="授权校验失败", action="reauth"),
    "429": ErrorCode(message="超出当日限额", action="wait"),
    "503": ErrorCode(message="上传失败", action="retry"),
    "404": ErrorCode(message="未查询到数据", action="empty"),
}


def test_backoff_is_exponential_capped_and_equally_jittered() -> None:
    assert [backoff_s(P, n, lambda: 1.0) for n in range(1, 9)] == [2, 4, 8, 16, 32, 64, 100, 100]
    assert backoff_s(P, 3, lambda: 0.25) == 5.0  # 8/2 + 8/2 * 0.25
    assert backoff_s(P, 1, lambda: 0.0) == 1.0  # never below half the ceiling
    assert backoff_s(P, 10_000, lambda: 1.0) == 100
    # below the cap, the smallest delay after attempt n is the largest after attempt n-1: delays grow
    assert all(backoff_s(P, n, lambda: 0.0) >= backoff_s(P, n - 1, lambda: 1.0) for n in range(2, 7))


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_s=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    ("kwargs", "action"),
    [
        ({"error": TimeoutError("read")}, "retry"),
        ({"error": ConnectionResetError("peer")}, "retry"),
        ({"status": 502}, "retry"),
        ({"status": 503, "code": "999"}, "retry"),
        ({"status": 408}, "retry"),
        ({"status": 401}, "reauth"),
        ({"status": 429}, "wait"),
        ({"status": 400}, "fatal"),
        ({"status": 200, "success": True}, "ok"),
        ({"status": 200}, "ok"),
        ({"status": 200, "code": "400", "errors": ERRORS}, "fatal"),
        ({"status": 200, "code": "403", "errors": ERRORS}, "reauth"),
        ({"status": 200, "code": "429", "errors": ERRORS}, "wait"),
        ({"status": 200, "code": "503", "errors": ERRORS}, "retry"),
        ({"status": 200, "code": "404", "errors": ERRORS}, "empty"),
        ({"status": 500, "code": "400", "errors": ERRORS}, "fatal"),
        ({"status": 200, "code": "777", "errors": ERRORS}, "fatal"),
        ({"status": 200, "code": "777", "errors": ERRORS, "unknown_code": "retry"}, "retry"),
        ({"status": 200, "success": False}, "fatal"),
    ],
)
def test_classify(kwargs: dict[str, object], action: str) -> None:
    assert classify(**kwargs).action == action  # type: ignore[arg-type]


def test_classify_reasons_are_redacted() -> None:
    out = classify(status=200, code="400", errors=ERRORS, message="idCardNo 110105199003071234 invalid")
    assert out.reason == "400 入参不规范 idCardNo 110105********1234 invalid"
    assert "timeout: TimeoutError" in classify(error=TimeoutError()).reason


def test_decide_terminal_outcomes() -> None:
    assert decide(P, Outcome("ok", "ok"), attempts=1, cycle_at=0, now=5) == Decision("sent", "ok")
    assert decide(P, Outcome("empty", "404"), attempts=1, cycle_at=0, now=5).kind == "sent"
    assert decide(P, Outcome("fatal", "400 bad"), attempts=1, cycle_at=0, now=5) == Decision("dead", "400 bad")


def test_decide_retry_backs_off_then_gives_up_on_attempts() -> None:
    fail = Outcome("retry", "HTTP 503")
    assert decide(P, fail, attempts=3, cycle_at=0, now=10, rand=lambda: 0.5) == Decision("retry", "HTTP 503", 16.0)  # 4 + 4*0.5
    dead = decide(P, fail, attempts=5, cycle_at=0, now=10, rand=lambda: 0.5)
    assert dead.kind == "dead" and dead.reason == "gave up after 5 attempts: HTTP 503"


def test_decide_retry_respects_max_age() -> None:
    fail = Outcome("retry", "timeout")
    clamped = decide(P, fail, attempts=4, cycle_at=0, now=990, rand=lambda: 1.0)
    assert clamped == Decision("retry", "timeout", 1000)  # one last try at the deadline
    assert decide(P, fail, attempts=1, cycle_at=0, now=1000).kind == "dead"


def test_decide_reauth_once_then_retry() -> None:
    rejected = Outcome("reauth", "403 授权校验失败")
    assert decide(P, rejected, attempts=1, cycle_at=0, now=1).kind == "reauth"
    again = decide(P, rejected, attempts=2, cycle_at=0, now=1, reauthed=True, rand=lambda: 1.0)
    assert again.kind == "retry" and again.reason.startswith("rejected again after token refresh")


def test_decide_wait_does_not_spend_attempts() -> None:
    quota = Outcome("wait", "429")
    d = decide(P, quota, attempts=50, cycle_at=0, now=10, rand=lambda: 1.0)
    assert d == Decision("retry", "429", 110)
    waited = RetryPolicy(base_s=1, max_delay_s=10, max_age_s=10_000, wait_s=3600)
    assert decide(waited, quota, attempts=1, cycle_at=0, now=0, rand=lambda: 0.0).next_attempt_at == 1800

"""The twin's token authority: issues and checks tokens by the platform's `auth:` settings.

Lifetime (`lifetime_s`), daily cap (`daily_cap`, successful issues per calendar day in the
platform's time zone) and lock-out (`lockout`: after N consecutive bad credentials, refuse for M
minutes counted from the latest failure) are the spec's numbers, so a client's token manager can be
tested against the rules it must respect without a real platform. The clock is injectable and can
be advanced, so a 7200 s lifetime or a 10-minute lock-out is tested in milliseconds.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from engine.spec.model import Auth

Refusal = Literal["bad_credentials", "locked", "cap"]
Rejection = Literal["missing", "invalid", "expired"]
DAY_S = 86400


@dataclass
class _Failures:
    count: int = 0
    last_at: float = 0.0
    locked_until: float | None = None


@dataclass
class TokenAuthority:
    auth: Auth
    credentials: Mapping[str, str]
    """The valid credential values (names from auth.credentials)."""
    clock: Callable[[], float] = time.time
    day_offset_s: float = 8 * 3600
    """The cap's day starts at midnight of this UTC offset (Asia/Shanghai)."""
    offset_s: float = 0.0
    """Added to the clock: `advance()` moves the twin's time forward."""
    tokens: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    issued: dict[int, int] = field(default_factory=dict)
    failures: dict[str, _Failures] = field(default_factory=dict)

    def now(self) -> float:
        return self.clock() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds

    def day(self, t: float | None = None) -> int:
        return int(((self.now() if t is None else t) + self.day_offset_s) // DAY_S)

    @property
    def issued_today(self) -> int:
        return self.issued.get(self.day(), 0)

    def issue(self, presented: Mapping[str, object]) -> str | Refusal:
        """A new token, or why not. Only the credential names the twin knows values for are compared."""
        names = [n for n in self.auth.credentials or () if n in self.credentials]
        who = str(presented.get(names[0], "")) if names else ""
        now = self.now()
        fail = self.failures.setdefault(who, _Failures())
        lockout = self.auth.lockout
        if fail.locked_until is not None and now >= fail.locked_until:  # the lock-out ran out
            fail.locked_until, fail.count = None, 0
        locked = fail.locked_until is not None
        good = all(str(presented.get(n, "")) == str(self.credentials[n]) for n in names)
        if not good:
            fail.count += 1
            fail.last_at = now
            if lockout is not None and fail.count >= lockout.failures:
                fail.locked_until = now + lockout.minutes * 60 if lockout.minutes is not None else float("inf")
                return "locked"
            return "locked" if locked else "bad_credentials"
        if locked:
            return "locked"
        fail.count = 0
        cap = self.auth.daily_cap
        today = self.day(now)
        if cap is not None and self.issued.get(today, 0) >= cap:
            return "cap"
        self.issued[today] = self.issued.get(today, 0) + 1
        token = secrets.token_urlsafe(24)
        lifetime = self.auth.lifetime_s
        self.tokens[token] = (who, now + lifetime if lifetime else None)
        return token

    def check(self, token: str | None) -> Rejection | None:
        """None when the token is good for a business call."""
        if not token:
            return "missing"
        got = self.tokens.get(token)
        if got is None:
            return "invalid"
        expires = got[1]
        if expires is not None and self.now() >= expires:
            return "expired"
        return None

    def reset(self) -> None:
        self.tokens.clear()
        self.issued.clear()
        self.failures.clear()
        self.offset_s = 0.0

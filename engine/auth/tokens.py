"""TokenManager: one valid token per platform credential, refreshed ahead of expiry, one refresh at a
time, within the platform's daily cap, and never hammering a lock-out with bad credentials.

Persisted (through a `KV`, normally the journal): the day's refresh count (a restart must not reset
the cap), the bad-credentials alarm (restarting must not spend another attempt towards the
lock-out), and the token with its expiry (a restart reuses it instead of spending the cap).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from engine.auth.kv import KV, MemoryKV
from engine.errors import SpecbridgeError
from engine.journal.redact import redact

if TYPE_CHECKING:
    from engine.spec.model import Auth

log = logging.getLogger("specbridge.auth")

Fetch = Callable[[], Awaitable[tuple[str, float | None]]]
"""Ask the platform for a token: returns (token, expires_in seconds or None for the documented lifetime).
Raise CredentialsRejected when the platform says the credentials are wrong; anything else is transient."""

DAY_S = 86400


class AuthError(SpecbridgeError):
    """A token could not be had."""


class CredentialsRejected(AuthError):
    """Raised by a fetch callable: the platform rejected the credentials (not a transient failure)."""


class BadCredentials(AuthError):
    """The alarm: credentials were rejected and no further token request will be made until
    `reset()` (or the credentials change), so the platform's lock-out is never reached."""


class TokenCapReached(AuthError):
    """The day's token cap is used up; `resets_at` is the next day boundary (epoch seconds)."""

    def __init__(self, message: str, resets_at: float) -> None:
        super().__init__(message)
        self.resets_at = resets_at


class TokenManager:
    def __init__(
        self,
        name: str,
        fetch: Fetch,
        *,
        lifetime_s: float | None = None,
        daily_cap: int | None = None,
        lockout_failures: int | None = None,
        margin_s: float | None = None,
        store: KV | None = None,
        clock: Callable[[], float] = time.time,
        day_offset_s: float = 8 * 3600,
        credentials_id: str | None = None,
    ) -> None:
        """name: key of the persisted state (one per platform credential, e.g. "jilin_imaging:prod").
        margin_s: refresh this long before expiry (default 10% of the lifetime, at most 300 s).
        day_offset_s: the cap's day starts at midnight of this UTC offset (Asia/Shanghai: +8 h).
        credentials_id: a fingerprint of the credentials; a persisted alarm for other credentials
        is cleared, so fixing the secret and restarting is enough."""
        self.name = name
        self._fetch = fetch
        self.lifetime_s = lifetime_s
        self.daily_cap = daily_cap
        self.lockout_failures = lockout_failures
        self.margin_s = margin_s
        self._store: KV = store if store is not None else MemoryKV()
        self._clock = clock
        self._day_offset_s = day_offset_s
        self._credentials_id = credentials_id
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_at = 0.0
        self._day = -1
        self._count = 0
        self._alarm: str | None = None
        self._flight: asyncio.Task[str] | None = None
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self.fetches = 0
        self.refreshed = 0
        """Token requests made, and tokens obtained (since start: the refresh metrics)."""

    def rebind(self, fetch: Fetch) -> None:
        """Send later refreshes through another fetcher (a hot reload's new client) while keeping the
        token, the day's count and any alarm: a reload must not cost a token of a capped platform."""
        self._fetch = fetch

    @classmethod
    def from_auth(cls, name: str, fetch: Fetch, auth: Auth, **kwargs: Any) -> TokenManager:
        """Build from a platform spec's `auth` block (lifetime_s, daily_cap, lockout)."""
        return cls(
            name,
            fetch,
            lifetime_s=auth.lifetime_s,
            daily_cap=auth.daily_cap,
            lockout_failures=auth.lockout.failures if auth.lockout else None,
            **kwargs,
        )

    @property
    def alarm(self) -> str | None:
        return self._alarm

    @property
    def refreshes_today(self) -> int:
        return self._count if self._day == self._day_of(self._clock()) else 0

    def _key(self) -> str:
        return f"auth:{self.name}"

    def _day_of(self, t: float) -> int:
        return int((t + self._day_offset_s) // DAY_S)

    async def _load(self) -> None:
        async with self._load_lock:
            if self._loaded:
                return
            raw = await self._store.kv_get(self._key())
            if raw:
                state = json.loads(raw)
                self._day, self._count = state.get("day", -1), state.get("count", 0)
                self._alarm = state.get("alarm")
                if self._alarm and self._credentials_id and state.get("credentials_id") != self._credentials_id:
                    log.warning("%s: credentials changed since the bad-credentials alarm; clearing it", self.name)
                    self._alarm = None
                if state.get("token") and state.get("expires_at", 0) > self._clock():
                    self._set_token(state["token"], state["expires_at"])
            self._loaded = True

    async def _save(self) -> None:
        state = {
            "day": self._day,
            "count": self._count,
            "alarm": self._alarm,
            "credentials_id": self._credentials_id,
            "token": self._token,
            "expires_at": self._expires_at,
        }
        await self._store.kv_set(self._key(), json.dumps(state))

    def _set_token(self, token: str, expires_at: float) -> None:
        self._token, self._expires_at = token, expires_at
        ttl = max(0.0, expires_at - self._clock())
        margin = self.margin_s if self.margin_s is not None else min(300.0, 0.1 * ttl)
        self._refresh_at = expires_at - margin

    def _valid(self, now: float) -> bool:
        return self._token is not None and now < self._expires_at

    async def get(self) -> str:
        """A token to send now. Refreshes (single-flight) when none is held or it is near expiry;
        while a refresh is refused (cap, alarm, platform down) a still-valid token is served."""
        if not self._loaded:
            await self._load()
        now = self._clock()
        if self._token is not None and now < self._refresh_at:
            return self._token
        if self._alarm is not None:
            if self._valid(now):
                return self._token  # type: ignore[return-value]
            raise BadCredentials(self._alarm)
        if self._flight is None:
            self._flight = asyncio.get_running_loop().create_task(self._refresh())
        return await asyncio.shield(self._flight)

    def invalidate(self, token: str) -> bool:
        """The platform rejected `token` mid-flight. Drops it only if it is still the current one, so
        many requests rejected with the same token cause exactly one refresh. Returns whether dropped."""
        if token != self._token:
            return False
        self._token, self._expires_at, self._refresh_at = None, 0.0, 0.0
        return True

    async def reset(self) -> None:
        """Clear the bad-credentials alarm (after the operator fixed the credentials)."""
        if not self._loaded:
            await self._load()
        self._alarm = None
        await self._save()

    async def _refresh(self) -> str:
        try:
            return await self._refresh_once()
        finally:
            self._flight = None

    async def _refresh_once(self) -> str:
        now = self._clock()
        day = self._day_of(now)
        if day != self._day:
            self._day, self._count = day, 0
        if self.daily_cap is not None and self._count >= self.daily_cap:
            resets_at = (day + 1) * DAY_S - self._day_offset_s
            if self._valid(now):
                self._refresh_at = min(self._expires_at, resets_at)
                return self._token  # type: ignore[return-value]
            await self._save()  # an invalidated token must not come back after a restart
            raise TokenCapReached(f"{self.name}: daily token cap {self.daily_cap} reached; next token after {resets_at:.0f}", resets_at)
        self.fetches += 1
        try:
            token, expires_in = await self._fetch()
        except CredentialsRejected as exc:
            lockout = f" (the platform locks out after {self.lockout_failures})" if self.lockout_failures else ""
            self._alarm = (
                f"{self.name}: credentials rejected: {redact(str(exc), limit=200)}; no more token requests"
                f"{lockout} until the credentials are fixed and the alarm reset"
            )
            log.error("ALARM %s", self._alarm)
            await self._save()
            raise BadCredentials(self._alarm) from exc
        except Exception as exc:
            if self._valid(now):
                log.warning("%s: token refresh failed, keeping the current token: %s", self.name, redact(str(exc)))
                self._refresh_at = now + min(30.0, (self._expires_at - now) / 2)
                return self._token  # type: ignore[return-value]
            raise
        ttl = expires_in if expires_in else self.lifetime_s or 3600.0
        self._count += 1
        self.refreshed += 1
        self._set_token(token, now + ttl)  # counted from before the request: errs early
        await self._save()
        return token

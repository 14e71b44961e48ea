"""TokenManager: single flight, refresh ahead, daily cap, bad-credential alarm, invalidate once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.auth import BadCredentials, CredentialsRejected, FileKV, MemoryKV, TokenCapReached, TokenManager
from engine.journal import Journal
from engine.spec.model import Auth, Lockout

# 2023-11-14 22:13:20 UTC = 2023-11-15 06:13:20 in Asia/Shanghai
T0 = 1_700_000_000.0
SHANGHAI_MIDNIGHT = 1_700_064_000.0  # 2023-11-15 16:00 UTC


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Platform:
    """A fake token endpoint: counts calls, can hold them open, reject, or fail."""

    def __init__(self, expires_in: float | None = None) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.gate: asyncio.Event | None = None
        self.reject = False
        self.down = False

    async def fetch(self) -> tuple[str, float | None]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.reject:
            raise CredentialsRejected("11002 uid或appSecret错误")
        if self.down:
            raise ConnectionRefusedError("connect refused")
        return f"tok{self.calls}", self.expires_in


def manager(p: Platform, clock: Clock, store: object | None = None, **kw: object) -> TokenManager:
    opts: dict[str, object] = {"lifetime_s": 7200, "daily_cap": 30, "lockout_failures": 6, **kw}
    return TokenManager("jilin:test", p.fetch, store=store or MemoryKV(), clock=clock, **opts)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_fifty_waiters_one_fetch() -> None:
    p, clock = Platform(), Clock()
    tm = manager(p, clock)
    p.gate = asyncio.Event()
    waiters = [asyncio.create_task(tm.get()) for _ in range(50)]
    await settle()
    assert p.calls == 1
    p.gate.set()
    assert await asyncio.gather(*waiters) == ["tok1"] * 50
    assert p.calls == 1 and tm.refreshes_today == 1


@pytest.mark.asyncio
async def test_refreshes_ahead_of_expiry() -> None:
    p, clock = Platform(), Clock()
    tm = manager(p, clock)
    assert await tm.get() == "tok1"
    clock.t = T0 + 7200 - 301  # default margin: 10% of lifetime, at most 300 s
    assert await tm.get() == "tok1"
    clock.t = T0 + 7200 - 299
    assert await tm.get() == "tok2"
    assert p.calls == 2


@pytest.mark.asyncio
async def test_platform_expires_in_wins_over_documented_lifetime() -> None:
    p, clock = Platform(expires_in=600), Clock()
    tm = manager(p, clock)
    await tm.get()
    clock.t = T0 + 600 - 59  # margin 10% of 600 = 60 s
    assert await tm.get() == "tok2"


@pytest.mark.asyncio
async def test_invalidate_refreshes_exactly_once_for_many_rejections() -> None:
    p, clock = Platform(), Clock()
    tm = manager(p, clock)
    stale = await tm.get()

    async def rejected_request() -> str:
        tm.invalidate(stale)  # the platform said 403 to a request carrying `stale`
        return await tm.get()

    p.gate = asyncio.Event()
    resends = [asyncio.create_task(rejected_request()) for _ in range(50)]
    await settle()
    p.gate.set()
    assert set(await asyncio.gather(*resends)) == {"tok2"}
    assert p.calls == 2
    assert tm.invalidate(stale) is False  # late rejections of the old token change nothing
    assert await tm.get() == "tok2" and p.calls == 2


@pytest.mark.asyncio
async def test_daily_cap_persists_across_restart_and_resets_at_shanghai_midnight() -> None:
    p, clock, store = Platform(), Clock(), MemoryKV()
    tm = manager(p, clock, store, daily_cap=3)
    for _ in range(3):
        tm.invalidate(await tm.get())
    with pytest.raises(TokenCapReached) as err:
        await tm.get()
    assert err.value.resets_at == SHANGHAI_MIDNIGHT and p.calls == 3

    restarted = manager(p, clock, store, daily_cap=3)
    with pytest.raises(TokenCapReached):
        await restarted.get()
    assert p.calls == 3

    clock.t = SHANGHAI_MIDNIGHT - 1
    with pytest.raises(TokenCapReached):
        await restarted.get()
    clock.t = SHANGHAI_MIDNIGHT
    assert await restarted.get() == "tok4"
    assert restarted.refreshes_today == 1


@pytest.mark.asyncio
async def test_cap_reached_keeps_serving_a_still_valid_token() -> None:
    p, clock = Platform(), Clock()
    tm = manager(p, clock, daily_cap=1)
    assert await tm.get() == "tok1"
    clock.t = T0 + 7000  # inside the refresh margin, token still valid
    assert await tm.get() == "tok1"
    assert p.calls == 1


@pytest.mark.asyncio
async def test_bad_credentials_alarm_stops_all_attempts_until_reset() -> None:
    p, clock, store = Platform(), Clock(), MemoryKV()
    p.reject = True
    tm = manager(p, clock, store)
    p.gate = asyncio.Event()
    waiters = [asyncio.create_task(tm.get()) for _ in range(10)]
    await settle()
    p.gate.set()
    p.gate = None
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, BadCredentials) for r in results)
    assert tm.alarm is not None and "credentials rejected" in tm.alarm and "locks out after 6" in tm.alarm
    for _ in range(10):
        with pytest.raises(BadCredentials):
            await tm.get()
    assert p.calls == 1

    restarted = manager(p, clock, store)  # a restart must not spend another try towards the lock-out
    with pytest.raises(BadCredentials):
        await restarted.get()
    assert p.calls == 1

    p.reject = False
    await restarted.reset()
    assert await restarted.get() == "tok2" and restarted.alarm is None


@pytest.mark.asyncio
async def test_changed_credentials_clear_a_persisted_alarm() -> None:
    p, clock, store = Platform(), Clock(), MemoryKV()
    p.reject = True
    with pytest.raises(BadCredentials):
        await manager(p, clock, store, credentials_id="old").get()
    p.reject = False
    with pytest.raises(BadCredentials):
        await manager(p, clock, store, credentials_id="old").get()
    assert await manager(p, clock, store, credentials_id="new").get() == "tok2"


@pytest.mark.asyncio
async def test_transient_failure_propagates_without_alarm_and_is_retried() -> None:
    p, clock = Platform(), Clock()
    tm = manager(p, clock)
    p.down = True
    with pytest.raises(ConnectionRefusedError):
        await tm.get()
    assert tm.alarm is None
    p.down = False
    assert await tm.get() == "tok2"

    clock.t = T0 + 7000  # refresh due, platform down: keep the valid token, back off the retries
    p.down = True
    assert await tm.get() == "tok2"
    assert await tm.get() == "tok2"
    assert p.calls == 3
    p.down = False
    clock.t = T0 + 7031
    assert await tm.get() == "tok4"


@pytest.mark.asyncio
async def test_restart_reuses_the_persisted_token(tmp_path: Path) -> None:
    p, clock = Platform(), Clock()
    store = FileKV(tmp_path / "tokens.json")
    assert await manager(p, clock, store).get() == "tok1"
    assert await manager(p, clock, store).get() == "tok1"
    clock.t = T0 + 7200
    assert await manager(p, clock, store).get() == "tok2"
    assert p.calls == 2


@pytest.mark.asyncio
async def test_journal_is_a_token_store_and_auth_spec_configures(tmp_path: Path) -> None:
    p, clock = Platform(), Clock()
    auth = Auth(kind="token", interface="getToken", lifetime_s=7200, daily_cap=2, lockout=Lockout(failures=6, minutes=10))
    async with await Journal.open(str(tmp_path / "j.db")) as j:
        tm = TokenManager.from_auth("jilin_imaging:prod", p.fetch, auth, store=j, clock=clock)
        assert (tm.lifetime_s, tm.daily_cap, tm.lockout_failures) == (7200, 2, 6)
        tm.invalidate(await tm.get())
        await tm.get()
    async with await Journal.open(str(tmp_path / "j.db")) as j:
        again = TokenManager.from_auth("jilin_imaging:prod", p.fetch, auth, store=j, clock=clock)
        again.invalidate(await again.get())
        with pytest.raises(TokenCapReached):
            await again.get()
    assert p.calls == 2

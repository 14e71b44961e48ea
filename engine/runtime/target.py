"""One delivery target: a platform at a base URL, with its crypto, token manager and transport."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any, overload

from adapters.base import OutboundResponse, TransportError
from adapters.http_json import HttpOutbound
from adapters.soap import SoapOutbound, has_soap
from engine.auth import CredentialsRejected, TokenManager
from engine.bridge.model import Target
from engine.crypto.profile import compile_profile
from engine.plugins.runtime import open_outbound
from engine.retry import Outcome, RetryPolicy, classify
from engine.runtime.wire import Prepared, Verdict, judge, plan, prepare, value_at
from engine.spec.compiled import CompiledInterface
from engine.spec.loader import PlatformSpec

_TEMPLATE = re.compile(r"\{([A-Za-z0-9_]+)\}")


@dataclass(slots=True)
class Result:
    outcome: Outcome
    verdict: Verdict | None
    response: OutboundResponse | None
    prepared: Prepared | None
    duration_ms: float
    token: str | None = None
    reauthed: bool = False


def fill(template: str, values: Mapping[str, Any]) -> str:
    """`{name}` placeholders from credentials (a missing one is an error naming it, never its value)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise KeyError(f"credential `{m.group(1)}` is not configured for this target")
        v = values[m.group(1)]
        return v.decode() if isinstance(v, bytes) else str(v)

    return _TEMPLATE.sub(sub, template)


class TargetClient:
    def __init__(self, name: str, target: Target, platform: PlatformSpec, secrets: Mapping[str, Any],
                 credentials: Mapping[str, Any], kv: Any = None) -> None:
        self.name = name
        self.target = target
        self.platform = platform
        self.credentials = credentials
        self.semaphore = asyncio.Semaphore(target.concurrency)
        spec = platform.platform
        self.crypto = compile_profile(spec.crypto, secrets, role="client") if spec.crypto is not None else None
        # An interface goes over HTTP when it has an HTTP binding (pe_system offers both), else SOAP.
        self.http = HttpOutbound(platform, target.base_url)
        self.soap = SoapOutbound(platform, target.base_url.rstrip("/") + (spec.transport.base_path or "")) if has_soap(platform) else None
        self.custom = open_outbound(target, name, platform)
        """The outbound half of the target's `transport:` (a plugin's), used for every interface when set."""
        self.headers = {k: fill(v, credentials) for k, v in target.headers.items()}
        self.supply = {k: fill(v, credentials) for k, v in target.supply.items()}
        auth = spec.auth
        self.tokens: TokenManager | None = None
        if auth is not None and auth.kind == "token" and auth.interface:
            self.tokens = TokenManager.from_auth(f"{name}:{platform.id}", self._fetch_token, auth, store=kv)
        self._policy: RetryPolicy | None = None

    @property
    def policy(self) -> RetryPolicy:
        """The target's retry policy, built once: on first use, so a bad setting fails a delivery as it always has."""
        if self._policy is None:
            r = self.target.retry
            self._policy = RetryPolicy(base_s=r.base_s, factor=r.factor, max_delay_s=r.max_delay_s, max_attempts=r.max_attempts,
                                       max_age_s=r.max_age_s)
        return self._policy

    async def _fetch_token(self) -> tuple[str, float | None]:
        """Call the platform's token interface with the configured credentials."""
        auth = self.platform.platform.auth
        assert auth is not None and auth.interface
        iface = self.platform.interfaces[auth.interface]
        names = auth.credentials or []
        message = {n: (v.decode() if isinstance(v, bytes) else v) for n, v in self.credentials.items() if n in names}
        res = await self._send(iface, message, token=None)
        if res.outcome.action == "ok" and res.verdict is not None:
            token = value_at(res.verdict.value, auth.token_path or "token")
            if isinstance(token, str) and token:
                expires = value_at(res.verdict.value, auth.expires_path) if auth.expires_path else None
                return token, float(expires) if isinstance(expires, (int, float)) else None
        if res.outcome.action in ("fatal", "reauth"):
            raise CredentialsRejected(f"{self.platform.id} refused the credentials: {res.outcome.reason}")
        raise TransportError(f"{self.platform.id} token request failed: {res.outcome.reason}")

    async def _send(self, iface: CompiledInterface, message: Mapping[str, Any], token: str | None) -> Result:
        started = perf_counter()
        prepared = None
        p = plan(iface)
        try:
            supplied = {k: v for k, v in self.supply.items() if k in p.fields} if self.supply and iface.request is not None else None
            prepared = prepare(iface, {**message, **supplied} if supplied else message,
                               crypto=self.crypto, headers=self.headers, token=token, timeout_s=self.target.timeout_s)
            outbound = self.custom or (self.http if p.http or self.soap is None else self.soap)
            resp = await outbound.send(prepared.request)
        except TransportError as exc:
            return Result(classify(error=exc), None, None, prepared, (perf_counter() - started) * 1000, token)
        verdict = judge(iface, resp, crypto=self.crypto, session=prepared.session)
        outcome = classify(status=resp.status, code=verdict.code, success=verdict.success, errors=p.errors, message=verdict.message)
        return Result(outcome, verdict, resp, prepared, (perf_counter() - started) * 1000, token)

    @overload
    async def send(self, iface: CompiledInterface, message: Mapping[str, Any]) -> Result: ...

    @overload
    async def send(self, iface: CompiledInterface, message: Mapping[str, Any], *, go: Callable[[], bool]) -> Result | None: ...

    async def send(self, iface: CompiledInterface, message: Mapping[str, Any], *, go: Callable[[], bool] | None = None) -> Result | None:
        """One attempt (with one token refresh and resend if the token was rejected mid-flight).
        `go`: asked once a slot is free; False: too late to start (a lease that ran out while the
        message waited), nothing is sent and None is returned."""
        sem = self.semaphore
        await sem.acquire()  # not `async with`: two coroutine frames less on every send
        try:
            if go is not None and not go():
                return None
            try:
                token = await self.tokens.get() if self.tokens is not None else None
            except TransportError as exc:  # the token service is unreachable: retry like any send
                return Result(classify(error=exc), None, None, None, 0.0)
            res = await self._send(iface, message, token)
            if res.outcome.action == "reauth" and self.tokens is not None and token is not None:
                self.tokens.invalidate(token)
                token = await self.tokens.get()
                res = await self._send(iface, message, token)
                res.reauthed = True
            return res
        finally:
            sem.release()

    async def close(self) -> None:
        await self.http.close()
        if self.soap is not None:
            await self.soap.close()
        if self.custom is not None:
            await self.custom.close()

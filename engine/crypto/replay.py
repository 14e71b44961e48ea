"""Anti-replay: timestamp window and nonce memory (inbound), generation (outbound). Sans-I/O:
callers pass `now` (epoch seconds) or get time.time()."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

from engine.crypto.errors import MissingReplayFieldError, ReplayedNonceError, StaleTimestampError

TimestampUnit = Literal["ms", "s"]
NonceFormat = Literal["uuid", "uuid-hex", "hex32", "hex16"]


class NonceStore(Protocol):
    """Remembers nonces; a shared store (database, Redis) can replace the in-memory one."""

    def add(self, nonce: str, now: float, ttl: float) -> bool:
        """Record `nonce` until now+ttl; False when it was already present and unexpired."""
        ...


@dataclass
class MemoryNonceStore:
    """In-process nonce memory with expiry and a size cap (oldest entries evicted first)."""

    max_entries: int = 1_000_000
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, nonce: str, now: float, ttl: float) -> bool:
        with self._lock:
            # Entries are appended in arrival order with equal TTLs, so expired ones sit at the front.
            while self._seen:
                first_expiry = next(iter(self._seen.values()))
                if first_expiry > now and len(self._seen) < self.max_entries:
                    break
                self._seen.popitem(last=False)
            expiry = self._seen.get(nonce)
            if expiry is not None and expiry > now:
                return False
            self._seen[nonce] = now + ttl
            self._seen.move_to_end(nonce)
            return True

    def __len__(self) -> int:
        return len(self._seen)


@dataclass
class ReplayGuard:
    """Stamps outbound messages and rejects stale or repeated inbound ones."""

    window_s: float = 900.0
    """How old a timestamp may be (15 minutes is common)."""
    future_skew_s: float = 300.0
    """How far in the future a timestamp may be (peer clock skew)."""
    unit: TimestampUnit = "ms"
    nonce_format: NonceFormat = "uuid"
    store: NonceStore = field(default_factory=MemoryNonceStore)

    def stamp(self, now: float | None = None) -> tuple[str, str]:
        """(timestamp, nonce) for an outbound message."""
        t = time.time() if now is None else now
        ts = str(int(t * 1000)) if self.unit == "ms" else str(int(t))
        return ts, self.new_nonce()

    def new_nonce(self) -> str:
        if self.nonce_format == "uuid":
            return str(uuid.uuid4())
        if self.nonce_format == "uuid-hex":
            return uuid.uuid4().hex
        return secrets.token_hex(16 if self.nonce_format == "hex32" else 8)

    def check_timestamp(self, timestamp: str | None, now: float | None = None) -> float:
        """Return the timestamp in seconds; raise StaleTimestampError outside the window."""
        t = time.time() if now is None else now
        if not timestamp or not timestamp.strip().isdigit():
            raise MissingReplayFieldError("anti-replay timestamp missing or not an integer")
        ts = int(timestamp) / (1000.0 if self.unit == "ms" else 1.0)
        age = t - ts
        if age > self.window_s:
            raise StaleTimestampError(f"timestamp is {age:.0f} s old; the window is {self.window_s:.0f} s")
        if -age > self.future_skew_s:
            raise StaleTimestampError(f"timestamp is {-age:.0f} s in the future; allowed skew is {self.future_skew_s:.0f} s")
        return ts

    def check_nonce(self, nonce: str | None, now: float | None = None) -> None:
        t = time.time() if now is None else now
        if not nonce:
            raise MissingReplayFieldError("anti-replay nonce missing")
        # Remember for as long as a timestamp could still be accepted.
        if not self.store.add(nonce, t, self.window_s + self.future_skew_s):
            raise ReplayedNonceError("nonce already used within the replay window")

    def check(self, timestamp: str | None, nonce: str | None, now: float | None = None) -> None:
        """Timestamp first, so stale messages never occupy nonce memory."""
        self.check_timestamp(timestamp, now)
        self.check_nonce(nonce, now)

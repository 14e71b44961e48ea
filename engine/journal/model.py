"""Journal value types: states, key policy, what callers pass in and what they get back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

from engine.errors import SpecbridgeError


class State(StrEnum):
    """Where a message is in its life. SENT and DEAD are terminal (DEAD is replayable)."""

    RECEIVED = "RECEIVED"
    TRANSLATED = "TRANSLATED"
    SENT = "SENT"
    ERROR = "ERROR"
    DEAD = "DEAD"


PENDING = (State.RECEIVED, State.TRANSLATED, State.ERROR)


class KeyPolicy(StrEnum):
    """What a re-sent record with a known natural key means.

    Same key and same payload hash is always a duplicate: ignored, the existing id returned.
    Same key and a *different* payload:

    - ``latest`` (default): a new version (a corrected report). Older versions not yet sent are
      superseded (DEAD, reason "superseded by #n", never replayed by `replay_dead`); only the
      latest must reach the platform. Versions go out in order, never two of one key at once.
    - ``version``: a new version, and every version is delivered, in order.
    - ``ignore``: first one wins; later payloads are duplicates (platforms that reject updates).

    Duplicates are detected against the latest version only: A, B, A sends A again, because the
    platform holds B. Pruning forgets keys: the dedup window is the journal's retention.
    """

    LATEST = "latest"
    VERSION = "version"
    IGNORE = "ignore"


class JournalError(SpecbridgeError):
    """The journal cannot do what was asked (unknown message, lost lease, newer schema)."""


class UnknownMessage(JournalError):
    """No message with this id (never existed, or pruned)."""


class LeaseLost(JournalError):
    """Another worker holds this message now: our lease expired and it was claimed again.

    The caller must drop its result; the new holder gets the message in doubt (`Message.in_doubt`)."""


Payload = bytes | str | dict[str, Any] | list[Any]


def encode_payload(payload: Payload | None) -> bytes | None:
    """Bytes as stored. Mappings/lists are encoded as JSON with sorted keys, so equal records hash equal."""
    if payload is None or isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return msgspec.json.encode(payload, order="sorted")


def payload_hash(data: bytes | None) -> str:
    return hashlib.sha256(data or b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Incoming:
    """One record for `Journal.receive_many`."""

    interface: str
    target: str
    source: Payload
    key: str | None = None
    route: str | None = None
    translated: Payload | None = None
    policy: KeyPolicy | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """What `receive` did: the message id (the existing one for a duplicate)."""

    id: int
    duplicate: bool
    version: int = 1


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt, as the sender saw it. Bodies are truncated to the journal's max_body."""

    outcome: str
    """Classification: ok, empty, retry, reauth, wait, fatal, transport, timeout; for a message in doubt
    also reconciled (found on the platform: SENT without a resend) and in_doubt (a note: not found, or
    resent without asking; the send follows as its own attempt)."""
    request: str = ""
    """A summary (method, path, size), never the payload."""
    status: int | None = None
    code: str | None = None
    body: str | bytes | None = None
    duration_ms: float | None = None
    error: str | None = None
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: int
    message_id: int
    n: int
    started_at: float
    duration_ms: float | None
    request: str
    status: int | None
    code: str | None
    body: str | None
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """A journalled message. `next_attempt_at` is the lease expiry while a worker holds it."""

    id: int
    interface: str
    target: str
    route: str | None
    state: State
    key: str | None
    version: int
    payload_hash: str
    source: bytes | None
    translated: bytes | None
    created_at: float
    updated_at: float
    cycle_at: float
    """Start of the current delivery cycle (created, or last replayed): the basis of max_age."""
    next_attempt_at: float | None
    lease: str | None
    attempts: int
    last_error: str | None
    superseded_by: int | None
    in_doubt: bool = False
    """A delivery of it may have reached the platform with no outcome recorded: it was claimed and that
    lease ran out (the holder was killed, or stopped mid-send). Ask the platform before sending it again
    (engine/runtime/reconcile.py). Kept across retries that do not settle it; cleared by an outcome."""
    history: list[AttemptRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Summary:
    """A search hit: no payloads, so listing pages stays cheap."""

    id: int
    interface: str
    target: str
    state: State
    key: str | None
    version: int
    created_at: float
    updated_at: float
    next_attempt_at: float | None
    attempts: int
    last_error: str | None
    in_doubt: bool = False
    """A delivery may have reached the platform with no outcome recorded (see Message.in_doubt)."""

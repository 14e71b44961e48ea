"""The seam between the runtime and every transport.

An adapter moves bytes; it never decides what they mean. Inbound halves hand each received
message to a `Sink` (the runtime journals it, validates it and returns the reply to send);
outbound halves send one prepared request and return the raw response. Specs, not code,
choose paths, operations, views and DICOM services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.errors import SpecbridgeError


@dataclass(slots=True)
class Attachment:
    """A file part or DICOM instance, spooled to disk past a size threshold."""

    name: str
    filename: str | None
    content_type: str | None
    size: int
    path: Path | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def as_field(self) -> dict[str, Any]:
        """The shape the validator checks file fields against."""
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size}


@dataclass(slots=True)
class InboundMessage:
    """One message as received: which interface, its body (wire bytes or decoded fields), headers."""

    interface: str
    """Qualified interface id, e.g. `jilin_imaging/savePatientExam`."""
    body: bytes | Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    """Transport facts: peer address, SOAP version, view watermark, DICOM AE titles..."""


@dataclass(slots=True)
class Reply:
    """What the inbound half answers: the platform's own success or error format."""

    body: bytes
    status: int = 200
    content_type: str = "application/json; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Sink = Callable[[InboundMessage], Awaitable[Reply]]

ManySink = Callable[[Sequence[InboundMessage]], Awaitable[list[Reply | Exception]]]
"""Many messages at once, answered one by one (an exception: that message was not taken). A sink may
carry one as `sink.many` (the runtime's do: a poller's window is then journalled in one call, and its
caller resumed once instead of once per row); a source that has many at hand uses it."""


def many_of(sink: Sink) -> ManySink | None:
    return getattr(sink, "many", None)


@dataclass(slots=True)
class OutboundRequest:
    interface: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    params: Mapping[str, str] = field(default_factory=dict)
    """SOAP parameters (already serialised) or form fields."""
    timeout_s: float = 30.0


@dataclass(slots=True)
class OutboundResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


class Inbound(Protocol):
    async def start(self, sink: Sink) -> None: ...

    async def stop(self) -> None: ...


class Outbound(Protocol):
    async def send(self, request: OutboundRequest) -> OutboundResponse: ...

    async def close(self) -> None: ...


class TransportError(SpecbridgeError):
    """The bytes did not get there (or back): connection refused, timeout, oversize response.

    The runtime classifies these as retryable; a platform's own error answer is not one of these.
    """

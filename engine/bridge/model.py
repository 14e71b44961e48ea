"""Bridge files (`specs/bridges/*.yaml`): what an operator runs with `specbridge run`.

A bridge wires sources (an adapter with its binding) through routes (mappings, filters) to
targets (a platform, its base URL, credentials by reference, retry and concurrency). Secrets
are references (`env:` / `file:`), never values: a bridge file is safe to commit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from engine.spec.model import Condition


class _S(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class JournalConfig(_S, kw_only=True):
    path: str = "var/journal.db"
    synchronous: Literal["NORMAL", "FULL"] = "FULL"
    lease_s: float = 60.0
    """How long a sender holds a message it claimed: one whose sender died (a crash, a killed delivery
    process) is due again, in doubt, when this runs out. At least twice every target's timeout_s (a
    reconciliation query and the send may each take that long); shorter brings a crash's leftovers back sooner."""


class RetryConfig(_S, kw_only=True):
    base_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 300.0
    max_attempts: int = 20
    max_age_s: float = 7 * 24 * 3600.0


class Source(_S, kw_only=True):
    """An inbound adapter and the spec interface its messages follow."""

    adapter: str
    """The transport that receives: http_json, soap, form, dbview, dicom, or a plugin's (`specbridge plugins`)."""
    spec: str | None = None
    """Qualified interface of the messages (`hospital_lis/lab_report_view`); DICOM needs none."""
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    """Adapter settings: listen address, database path and poll interval, AE title and port... checked against
    the transport's settings schema when the bridge opens (file:line findings, as for specs)."""
    note: str | None = None


class Target(_S, kw_only=True):
    """One platform instance the bridge delivers to."""

    platform: str
    base_url: str
    credentials: dict[str, str] = msgspec.field(default_factory=dict)
    """Auth values by the names the platform's `auth.credentials` lists: `env:NAME`, `file:PATH`,
    or `secret:NAME` (one of the bridge's secrets)."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Static request headers (envelope fields such as authoritytype); `{name}` takes a credential."""
    supply: dict[str, str] = msgspec.field(default_factory=dict)
    """Request fields the deployment supplies (xinjiang_mr strCredential): templates over credentials."""
    transport: str | None = None
    """A transport's outbound half to send with (a plugin's, say); default: HTTP or SOAP per the interface's binding."""
    transport_settings: dict[str, Any] = msgspec.field(default_factory=dict)
    """That transport's settings, checked against its settings schema."""
    concurrency: int = 4
    timeout_s: float = 30.0
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)
    note: str | None = None


class RouteTarget(_S, kw_only=True):
    target: str
    interface: str
    """The platform interface to call (`ArchiveAutoReport.lab`)."""
    mapping: str | None = None
    """Mapping from the canonical model (or the source) to this interface's request."""
    when: Condition | None = None
    """Only records for which this holds go to this target."""


class Route(_S, kw_only=True):
    id: str
    source: str
    mapping: str | None = None
    """Mapping from the source record to the canonical model (none: the source is canonical)."""
    to: list[RouteTarget]
    reply: Literal["async", "sync"] = "async"
    """async: journal, acknowledge, deliver later. sync (queries): the source's call waits while the
    bridge journals, sends to its one target and answers with the platform's reply translated back
    (engine/runtime/query.py); a failed query is not retried later: no one would read the answer."""
    reply_timeout_s: float | None = None
    """sync: how long the caller waits for the platform (default: the target's timeout_s)."""
    note: str | None = None


class AdminConfig(_S, kw_only=True):
    """The operator surface of a running bridge: /metrics, /health, /ready, the admin API and dashboard."""

    host: str = "127.0.0.1"
    """Listen address; loopback by default (put a TLS proxy in front to reach it from elsewhere)."""
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    """0 picks a free port (printed at start); set a fixed one for Prometheus to scrape."""
    token: Annotated[str, msgspec.Meta(pattern=r"^(env|file):.+")] | None = None
    """Bearer token of the admin API by reference, `env:NAME` or `file:PATH`; none: the API is off."""


class DeliveryConfig(_S, kw_only=True):
    """Where targets' senders run. One Python process runs on one core at a time; delivery processes put
    the senders (claim, validate, envelope, send, record) on other cores while this process polls sources,
    translates and journals (engine/runtime/procs.py)."""

    processes: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    """Delivery processes besides the bridge's own; 0: every sender runs in the bridge's process. A target's
    sender lives in exactly one process, so its concurrency limit, token and daily token cap stay exact:
    targets are shared out among the processes in order, and a target that answers a synchronous route
    stays in the bridge's process (the caller waits there). On a machine with N cores, N - 1 is a start."""


class Bridge(_S, kw_only=True):
    id: str
    title: str | None = None
    journal: JournalConfig = msgspec.field(default_factory=JournalConfig)
    secrets: dict[str, str] = msgspec.field(default_factory=dict)
    """Key material and passwords by the names crypto profiles reference: `env:NAME` or `file:PATH`."""
    sources: dict[str, Source]
    targets: dict[str, Target]
    routes: list[Route]
    admin: AdminConfig | None = None
    delivery: DeliveryConfig = msgspec.field(default_factory=DeliveryConfig)
    note: str | None = None

"""A sample specbridge plugin: what a province's platform needs beyond YAML.

- `hmac_sm3_salted` signer and `sorted_query` canonical recipe: the province signs
  HMAC-SM3(key, salt + "a=1&b=2...") over its sorted, non-empty inputs, upper-case hex.
- `gbt7408_date` field type: a GB/T 7408 calendar date, basic (20240318) or extended (2024-03-18).
- `ybk_card` field type: a 医保 card number (digits, a region prefix, a Luhn check digit). Sensitive.
- `region_prefix` check, `gbt2260_sample` code-table provider, `stamp` envelope step, `jsonl_file` transport.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import json
import re
from pathlib import Path
from typing import Any, Literal

import msgspec

from adapters.base import InboundMessage, OutboundRequest, OutboundResponse
from engine.crypto.errors import MissingSignatureError
from engine.crypto.sm3 import hmac_sm3
from engine.plugins import EnvelopeStep, FieldType, Plugin, Signer, Transport

__version__ = "1.2.0"


# -- signing -------------------------------------------------------------------------------------
class SaltedSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    salt: str = ""
    """Text put before the canonical string (the province's fixed application salt)."""
    output: Literal["hex", "HEX", "base64"] = "HEX"
    """How the MAC is written."""


class SaltedHmacSm3(Signer):
    """HMAC-SM3 keyed with the shared secret over salt + canonical string (the province's 签名算法 4.2)."""

    settings = SaltedSettings

    def load_key(self, raw: str | bytes, *, private: bool, settings: SaltedSettings) -> bytes:
        return raw.encode("utf-8") if isinstance(raw, str) else raw

    def sign(self, data: bytes, key: bytes, settings: SaltedSettings) -> str:
        mac = hmac_sm3(key, settings.salt.encode("utf-8") + data)
        if settings.output == "base64":
            return base64.b64encode(mac).decode("ascii")
        return mac.hex().upper() if settings.output == "HEX" else mac.hex()


class QuerySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    exclude: list[str] = msgspec.field(default_factory=list)
    """Inputs left out of the string."""
    joiner: str = "&"


def sorted_query(values: dict[str, str], body: bytes, settings: QuerySettings) -> bytes:
    """`name=value` pairs of the non-empty inputs, sorted by name, joined by `joiner` (UTF-8)."""
    pairs = sorted((k, v) for k, v in values.items() if v != "" and k not in settings.exclude)
    return settings.joiner.join(f"{k}={v}" for k, v in pairs).encode("utf-8")


# -- field types -------------------------------------------------------------------------------------
class DateSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    form: Literal["basic", "extended"] = "basic"
    """basic: YYYYMMDD; extended: YYYY-MM-DD."""


_FORMS = {"basic": re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "extended": re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")}


class Gbt7408Date(FieldType):
    """A calendar date per GB/T 7408-2005, basic or extended form, checked against the calendar."""

    base = str
    settings = DateSettings

    def validate(self, value: str, settings: DateSettings) -> str | None:
        m = _FORMS[settings.form].match(value)
        if m is None:
            return f"not a GB/T 7408 {settings.form}-form date ({'YYYYMMDD' if settings.form == 'basic' else 'YYYY-MM-DD'})"
        y, mo, d = (int(g) for g in m.groups())
        if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]):
            return "not a calendar date"
        return None

    def json_schema(self, settings: DateSettings) -> dict[str, Any]:
        return {"type": "string", "pattern": _FORMS[settings.form].pattern}

    def sample(self, settings: DateSettings) -> str:
        return "20240318" if settings.form == "basic" else "2024-03-18"


class CardSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    region: str | None = None
    """The 6-digit administrative region (GB/T 2260) every card number starts with."""
    length: int = 16
    """Digits in all, the Luhn check digit last."""


def luhn_digit(digits: str) -> str:
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


class YbkCard(FieldType):
    """A 医保 card number: `length` digits starting with the region code, the last a Luhn check digit."""

    base = str
    settings = CardSettings
    sensitive = True

    def validate(self, value: str, settings: CardSettings) -> str | None:
        if not value.isdigit() or len(value) != settings.length:
            return f"not a {settings.length}-digit card number"
        if settings.region and not value.startswith(settings.region):
            return f"card number is not of region {settings.region}"
        if luhn_digit(value[:-1]) != value[-1]:
            return "card number check digit is wrong"
        return None

    def json_schema(self, settings: CardSettings) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{settings.region or ''}\\d{{{settings.length - len(settings.region or '')}}}$"}

    def sample(self, settings: CardSettings) -> str:
        head = (settings.region or "") + "0" * (settings.length - 1 - len(settings.region or ""))
        return head + luhn_digit(head)


class PrefixSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prefixes: list[str]
    """Accepted leading characters."""


def region_prefix(value: str, settings: PrefixSettings) -> str | None:
    """The value starts with one of `prefixes` (an institution code of the province, say)."""
    return None if value.startswith(tuple(settings.prefixes)) else f"does not start with {' or '.join(settings.prefixes)}"


# -- code tables, envelope steps, transports --------------------------------------------------
class RegionSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    province: str
    """Two-digit province code (41 = 河南)."""


_REGIONS = {"410000": "河南省", "410100": "郑州市", "410200": "开封市", "420000": "湖北省", "420100": "武汉市"}


def gbt2260_sample(settings: RegionSettings, directory: Path) -> dict[str, str]:
    """GB/T 2260 region codes of one province (a sample of the national table)."""
    return {k: v for k, v in _REGIONS.items() if k.startswith(settings.province)}


class StampSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    header: str = "X-Gateway"
    value: str
    """What the gateway expects in that header."""


class Stamp(EnvelopeStep):
    """Adds the gateway's fixed header to every request; the platform side refuses requests without it."""

    settings = StampSettings

    def seal(self, message: Any, settings: StampSettings) -> None:
        message.headers[settings.header] = settings.value

    def open(self, message: Any, settings: StampSettings) -> None:
        got = next((v for k, v in message.headers.items() if k.lower() == settings.header.lower()), None)
        if got != settings.value:
            raise MissingSignatureError(f"gateway header {settings.header} missing or wrong")


class JsonlSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str
    """The JSON-lines file (relative to the bridge's working directory)."""
    reply: dict[str, Any] = msgspec.field(default_factory=lambda: {"code": "0", "msg": "ok"})
    """outbound: what every send answers."""


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.task: asyncio.Task[None] | None = None

    async def start(self, sink: Any) -> None:
        async def feed() -> None:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    await sink(InboundMessage("jsonl", json.loads(line)))

        self.task = asyncio.create_task(feed())

    async def stop(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


class _Writer:
    def __init__(self, path: Path, reply: dict[str, Any]) -> None:
        self.path, self.reply = path, reply

    async def send(self, request: OutboundRequest) -> OutboundResponse:
        line = {"interface": request.interface, "headers": dict(request.headers), "body": request.body.decode("utf-8")}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        return OutboundResponse(200, json.dumps(self.reply).encode("utf-8"), {"Content-Type": "application/json"})

    async def close(self) -> None:
        return None


class JsonlFile(Transport):
    """Records from a JSON-lines file (a source), or requests appended to one (a target): a file drop."""

    settings = JsonlSettings

    def inbound(self, ctx: Any, settings: JsonlSettings) -> _Reader:
        return _Reader(ctx.base_dir / settings.path)

    def outbound(self, ctx: Any, settings: JsonlSettings) -> _Writer:
        return _Writer(Path(settings.path), settings.reply)


def register(plugin: Plugin) -> None:
    plugin.signer("hmac_sm3_salted", SaltedHmacSm3())
    plugin.canonical("sorted_query", sorted_query, settings=QuerySettings)
    plugin.field_type("gbt7408_date", Gbt7408Date())
    plugin.field_type("ybk_card", YbkCard())
    plugin.check("region_prefix", region_prefix, settings=PrefixSettings)
    plugin.code_table("gbt2260_sample", gbt2260_sample, settings=RegionSettings)
    plugin.envelope_step("stamp", Stamp())
    plugin.transport("jsonl_file", JsonlFile())

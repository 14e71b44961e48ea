"""Logging for specbridge: JSON lines (or text) on stderr, redacted, with the message in hand on every line.

`message_context(id)` (the runtime sets it around receiving and delivering a message) puts the
message id in a ContextVar; every record logged inside it, from any module, carries that id, so an
operator can `grep '"message_id":42'` one message's whole story. Tasks copy the context when they
are created, so concurrent deliveries never see each other's id.

Nothing sensitive leaves through a log line: every text (the message, string extras, tracebacks) goes
through `engine.journal.redact` (ID numbers, phones, personal fields) and then through a mask of
secrets: values of secret-named fields (token, password, key, sign...) in JSON, XML, form and
`name=value` text, and any value registered with `register_secrets` (the bridge's resolved secrets
and credentials) wherever it appears.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from itertools import islice
from typing import IO, Any

import msgspec

from engine.journal.redact import cut, mask

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_context: ContextVar[dict[str, Any] | None] = ContextVar("specbridge_log_context", default=None)

_SECRET_NAMES = (
    r"[\w-]*token|[\w-]*secret(?:key)?|password|passwd|pwd|(?:app_?|api_?|private_?|secret_?)?key|sign(?:ature)?"
    r"|[\w]*credential|authorization|certificate"
)
_JSON_SECRET = re.compile(rf'("(?i:{_SECRET_NAMES})"\s*:\s*")([^"]*)(")')
_XML_SECRET = re.compile(rf"(<(?i:{_SECRET_NAMES})>)([^<]*)(</)")
_ATTR_SECRET = re.compile(rf"""(\b(?i:{_SECRET_NAMES})=)(["'])([^"']*)(\2)""")
_KV_SECRET = re.compile(rf"((?:^|[?&\s,;{{(])(?i:{_SECRET_NAMES})=)([^&\s,;'\"}})<]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_known: set[str] = set()
_known_re: re.Pattern[str] | None = None
_clean: set[str] = set()
"""Short texts that scrubbing left as they were (target names, interfaces, routes, recurring
messages): known clean until the registered secrets change, so each costs one lookup, not a scan.
Only texts without anything to mask go in: no personal data is kept here."""
_CLEAN_MAX_LEN, _CLEAN_MAX = 200, 4096

_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_N_INIT = len(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_HANDLER_NAME = "specbridge"


def register_secrets(values: Iterable[Any]) -> None:
    """Mask these values verbatim in every log line from now on (resolved secrets and credentials)."""
    global _known_re
    for v in values:
        text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v if isinstance(v, str) else None
        if text and len(text.strip()) >= 4:  # a 1-3 character value would mask ordinary words
            _known.add(text.strip())
    if _known:
        _known_re = re.compile("|".join(re.escape(s) for s in sorted(_known, key=len, reverse=True)))
        _clean.clear()  # a text clean before may hold the new secret


_SECRET_KEY = re.compile(rf"(?i:{_SECRET_NAMES})")


def register_credentials(credentials: Mapping[str, Any]) -> None:
    """Mask the credential values whose name says they are secret (password, appSecret, key...), not
    the identifiers beside them (org code, user id), which an operator needs to read in the log."""
    register_secrets(v for k, v in credentials.items() if _SECRET_KEY.fullmatch(k))


def scrub(text: Any, *, limit: int = 2000) -> str:
    """Text safe for a log line: personal data redacted, secrets masked, then cut to `limit` (masked
    whole first, so a secret straddling the cut is masked, not half shown).

    Each pattern runs only when the text has what it needs to match (as in `redact.mask`): a quote
    and a colon, a `<`, a `=`; the `name=value` patterns are the costly ones (~3 us each on a short
    line) and most log lines have no `=`."""
    if isinstance(text, str):
        if text in _clean and len(text) <= limit:
            return text
        out = text
    elif text is None:
        return ""
    else:
        out = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)
    known = _known_re  # the secrets this text is checked against (a clean verdict holds for these only)
    out = mask(out)
    if known is not None:
        out = known.sub("***", out)
    if '"' in out and ":" in out:
        out = _JSON_SECRET.sub(r"\1***\3", out)
    if "<" in out:
        out = _XML_SECRET.sub(r"\1***\3", out)
    if "=" in out:
        out = _ATTR_SECRET.sub(r"\1\2***\4", out)
        out = _KV_SECRET.sub(r"\1***", out)
    out = _BEARER.sub(r"\1 ***", out)
    if out is text and len(out) <= _CLEAN_MAX_LEN and known is _known_re:  # `sub` hands back the very object when nothing matched
        if len(_clean) >= _CLEAN_MAX:
            _clean.clear()
        _clean.add(out)
    return cut(out, limit)


class _MessageContext:
    """A plain context manager, not a generator one: entered once per delivery, logged or not."""

    __slots__ = ("_ctx", "_token")

    def __init__(self, ctx: dict[str, Any]) -> None:
        self._ctx = ctx
        self._token: Token[dict[str, Any] | None] | None = None

    def __enter__(self) -> None:
        parent = _context.get()
        self._token = _context.set({**parent, **self._ctx} if parent else self._ctx)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _context.reset(self._token)


def message_context(message_id: int | None = None, **fields: Any) -> AbstractContextManager[None]:
    """Every log line inside carries `message_id` (and these fields: target, interface, route...)."""
    ctx = {k: v for k, v in fields.items() if v is not None}
    if message_id is not None:
        ctx["message_id"] = message_id
    return _MessageContext(ctx)


def current() -> dict[str, Any]:
    """The fields the current context adds to log lines."""
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Stamp the context onto the record where it is logged (same task, same thread)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        if ctx:
            for k, v in ctx.items():
                if not hasattr(record, k):
                    setattr(record, k, v)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """`extra=` fields and the context's, scrubbed. They come after the attributes LogRecord sets
    itself (dicts keep insertion order), so the scan starts there."""
    out: dict[str, Any] = {}
    for k, v in islice(record.__dict__.items(), _N_INIT, None):
        if k in _STD_ATTRS or k[0] == "_":
            continue
        out[k] = v if isinstance(v, (bool, int, float)) or v is None else scrub(v, limit=1000)
    return out


class _Clock:
    """A record's time as text, formatted once per second (strftime is most of a short line's cost)."""

    __slots__ = ("_fmt", "_local", "_second", "_text")

    def __init__(self, fmt: str, local: bool) -> None:
        self._fmt, self._local, self._second, self._text = fmt, local, -1, ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self._fmt, time.localtime(second) if self._local else time.gmtime(second))
            self._second = second
        return self._text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then message_id and any extras."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock("%Y-%m-%dT%H:%M:%S", local=False)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": f"{self._clock(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        out.update(_extras(record))
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info), limit=8000)
        return msgspec.json.encode(out).decode("utf-8")


class TextFormatter(logging.Formatter):
    """`2024-05-11 08:59:33 WARNING specbridge.runtime [#42] message key=value`, redacted the same way."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock("%Y-%m-%d %H:%M:%S", local=True)

    def format(self, record: logging.LogRecord) -> str:
        ts = self._clock(record.created)
        extras = _extras(record)
        mid = extras.pop("message_id", None)
        head = f"{ts} {record.levelname} {record.name}" + (f" [#{mid}]" if mid is not None else "")
        tail = "".join(f" {k}={v}" for k, v in extras.items())
        line = f"{head} {scrub(record.getMessage())}{tail}"
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info), limit=8000)
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at emit time (a test's capture, a redirected stream), never a
    stream that was closed since configure() ran."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._fixed = stream
        super().__init__(stream)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: IO[str] | None) -> None:
        self._fixed = value


def add_arguments(p: argparse.ArgumentParser, *, on_command: bool = False) -> None:
    """`--log-format` and `--log-level`: global (before the command), and again on commands that log
    a lot (`run`), where they only apply when given."""
    default: Any = argparse.SUPPRESS if on_command else None
    p.add_argument("--log-format", choices=FORMATS, default=default,
                   help="log lines as text or JSON, one object per line (default: $SPECBRIDGE_LOG_FORMAT or text)")
    p.add_argument("--log-level", type=str.upper, choices=LEVELS, default=default,
                   help="lowest level logged (default: $SPECBRIDGE_LOG_LEVEL, else INFO for run and WARNING otherwise)")


def configure_from(args: argparse.Namespace) -> logging.Handler:
    """Configure from parsed arguments, then the environment, then the command's own default level."""
    fmt = getattr(args, "log_format", None) or os.environ.get("SPECBRIDGE_LOG_FORMAT") or "text"
    level = getattr(args, "log_level", None) or os.environ.get("SPECBRIDGE_LOG_LEVEL") or getattr(args, "log_level_default", "WARNING")
    return configure(fmt.lower(), level)


def _installed() -> logging.Handler | None:
    """The one specbridge handler `configure` installed, if any."""
    return next((h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME), None)


def json_handler() -> logging.Handler | None:
    """The installed specbridge handler when it writes JSON (progress lines then go out as JSON too)."""
    h = _installed()
    return h if h is not None and isinstance(h.formatter, JsonFormatter) else None


def settings() -> dict[str, Any] | None:
    """The installed handler's format, level and log file (None when it writes to stderr), so another
    process of the bridge (engine/runtime/procs.py) logs alike; None when none is installed."""
    h = _installed()
    if not isinstance(h, _StderrHandler):
        return None
    path = getattr(h._fixed, "name", None)
    return {"format": "json" if isinstance(h.formatter, JsonFormatter) else "text",
            "level": logging.getLevelName(logging.getLogger().level),
            "path": path if isinstance(path, str) and not path.startswith("<") else None}


def configure(fmt: str = "text", level: str = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Install the one specbridge handler on the root logger (replacing an earlier one)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME:
            root.removeHandler(h)
    handler = _StderrHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(lvl)
    for name in ("pynetdicom", "aiohttp.access"):  # third-party chatter (association events, access lines) only when debugging
        logging.getLogger(name).setLevel(logging.WARNING if lvl > logging.DEBUG else logging.NOTSET)
    logging.getLogger("aiosqlite").setLevel(logging.INFO)  # one debug line per query, from its own thread: never useful
    return handler

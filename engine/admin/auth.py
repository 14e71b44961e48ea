"""The admin API's bearer token: resolved from a reference (`env:` / `file:`), compared in constant time.

The token is never logged, never echoed in an error, and never taken from the query string (URLs
end up in access logs and browser history); the dashboard sends it in the Authorization header.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from aiohttp import web

from engine.crypto.secrets import resolve_secret
from engine.errors import SpecbridgeError

MIN_TOKEN_CHARS = 16


class AdminConfigError(SpecbridgeError):
    """The bridge file's `admin:` section cannot be used as written."""


def resolve_token(ref: str | None, base_dir: Path) -> str | None:
    """The token a reference names, or None when the API is off. A short token is refused: it is
    the only thing between the network and replaying or pausing a hospital's messages."""
    if ref is None:
        return None
    try:
        value = resolve_secret(ref, base_dir=base_dir)
    except SpecbridgeError as exc:
        raise AdminConfigError(f"admin.token: {exc}") from None
    token = value.decode("utf-8", "replace").strip() if isinstance(value, bytes) else value.strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise AdminConfigError(f"admin.token: at least {MIN_TOKEN_CHARS} characters are needed (`specbridge admin-token` makes one)")
    return token


def authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))

"""Byte <-> text encodings used on the wire (base64, hex), with strict decoding.

Decoders tolerate whitespace and line wrapping (MIME-style peers) but nothing else,
so a corrupted value fails here with MalformedInputError instead of feeding garbage
into a cipher.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Literal

from engine.crypto.errors import MalformedInputError

TextEncoding = Literal["base64", "base64url", "hex", "HEX", "raw"]
"""base64 (standard, padded), base64url, hex (lower case), HEX (upper case), raw (latin-1 passthrough)."""

_WS = re.compile(rb"\s+")


def encode(data: bytes, encoding: TextEncoding) -> str:
    """Encode bytes for the wire."""
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    if encoding == "base64url":
        return base64.urlsafe_b64encode(data).decode("ascii")
    if encoding == "hex":
        return data.hex()
    if encoding == "HEX":
        return data.hex().upper()
    if encoding == "raw":
        return data.decode("latin-1")
    raise MalformedInputError(f"unknown text encoding {encoding!r}")


def decode(text: str | bytes, encoding: TextEncoding, *, what: str = "value") -> bytes:
    """Decode wire text; raise MalformedInputError (naming `what`, never the value) on bad input."""
    raw = text.encode("latin-1") if isinstance(text, str) else bytes(text)
    if encoding == "raw":
        return raw
    raw = _WS.sub(b"", raw)
    try:
        if encoding == "base64":
            return base64.b64decode(raw, validate=True)
        if encoding == "base64url":
            if not re.fullmatch(rb"[A-Za-z0-9_=-]*", raw):
                raise binascii.Error("non-alphabet character")
            return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
        if encoding in ("hex", "HEX"):
            return bytes.fromhex(raw.decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MalformedInputError(f"{what} is not valid {encoding}") from None
    raise MalformedInputError(f"unknown text encoding {encoding!r}")

"""SM2 ciphertext and signature wire layouts.

Backends exchange ciphertexts as `SM2Ciphertext` (C1 point, C3, C2) and signatures as
(r, s); this module converts to and from what peers send: raw C1C3C2 (GB/T 32918.4),
legacy C1C2C3, or GM/T 0009 ASN.1 DER, with or without the 04 point prefix; signatures
as DER SEQUENCE{r, s} or raw 64-byte r||s.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from engine.crypto import _der
from engine.crypto.errors import MalformedCiphertextError, MalformedInputError, MalformedSignatureError
from engine.crypto.keys import N, on_curve

CipherLayout = Literal["C1C3C2", "C1C2C3", "DER"]
SignatureFormat = Literal["der", "raw"]

C3_SIZE = 32


class SM2Ciphertext(NamedTuple):
    """C1 = (x, y), C3 = SM3(x2 || M || y2), C2 = M xor KDF(x2 || y2)."""

    x: int
    y: int
    c3: bytes
    c2: bytes


def encode_ciphertext(ct: SM2Ciphertext, layout: CipherLayout = "C1C3C2", *, prefix_04: bool = True) -> bytes:
    if layout == "DER":
        return _der.sequence(
            _der.integer(ct.x),
            _der.integer(ct.y),
            _der.tlv(_der.OCTET_STRING, ct.c3),
            _der.tlv(_der.OCTET_STRING, ct.c2),
        )
    c1 = (b"\x04" if prefix_04 else b"") + ct.x.to_bytes(32, "big") + ct.y.to_bytes(32, "big")
    if layout == "C1C3C2":
        return c1 + ct.c3 + ct.c2
    if layout == "C1C2C3":
        return c1 + ct.c2 + ct.c3
    raise MalformedInputError(f"unknown SM2 ciphertext layout {layout!r}")


def _split_raw(data: bytes, layout: CipherLayout, c1_len: int) -> SM2Ciphertext | None:
    if len(data) <= c1_len + C3_SIZE:
        return None
    off = c1_len - 64
    x = int.from_bytes(data[off : off + 32], "big")
    y = int.from_bytes(data[off + 32 : c1_len], "big")
    if not on_curve(x, y):
        return None
    body = data[c1_len:]
    if layout == "C1C3C2":
        return SM2Ciphertext(x, y, body[:C3_SIZE], body[C3_SIZE:])
    return SM2Ciphertext(x, y, body[-C3_SIZE:], body[:-C3_SIZE])


def decode_ciphertext(data: bytes, layout: CipherLayout = "C1C3C2", *, prefix_04: bool | None = None) -> SM2Ciphertext:
    """Parse a ciphertext. `prefix_04=None` accepts both (the point is checked on the curve either way)."""
    if layout == "DER":
        try:
            items = _der.read_sequence(data)
            if [t for t, _ in items] != [_der.INTEGER, _der.INTEGER, _der.OCTET_STRING, _der.OCTET_STRING]:
                raise MalformedInputError("wrong shape")
            x, y = _der.to_int(items[0][1]), _der.to_int(items[1][1])
        except MalformedInputError:
            raise MalformedCiphertextError("SM2 ciphertext is not GM/T 0009 DER") from None
        c3, c2 = items[2][1], items[3][1]
        if len(c3) != C3_SIZE or not c2:
            raise MalformedCiphertextError("SM2 ciphertext has a bad C3 or empty C2")
        if not on_curve(x, y):
            raise MalformedCiphertextError("SM2 ciphertext C1 is not a point on the curve")
        return SM2Ciphertext(x, y, c3, c2)
    if layout not in ("C1C3C2", "C1C2C3"):
        raise MalformedInputError(f"unknown SM2 ciphertext layout {layout!r}")
    tries = [65] if prefix_04 else [64] if prefix_04 is False else [65, 64]
    for c1_len in tries:
        if c1_len == 65 and data[:1] != b"\x04":
            continue
        ct = _split_raw(data, layout, c1_len)
        if ct is not None:
            return ct
    raise MalformedCiphertextError("SM2 ciphertext too short, or its C1 is not a point on the curve")


def encode_signature(r: int, s: int, fmt: SignatureFormat = "der") -> bytes:
    if fmt == "raw":
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return encode_dss_signature(r, s)


def decode_signature(sig: bytes, fmt: SignatureFormat | None = "der") -> tuple[int, int]:
    """Parse a signature; `fmt=None` accepts raw (exactly 64 bytes) or DER."""
    if fmt == "raw" or (fmt is None and len(sig) == 64):
        if len(sig) != 64:
            raise MalformedSignatureError(f"raw SM2 signature must be 64 bytes, got {len(sig)}")
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    else:
        try:
            r, s = decode_dss_signature(sig)
        except ValueError:
            raise MalformedSignatureError("SM2 signature is not DER SEQUENCE{r, s}") from None
        if encode_dss_signature(r, s) != sig:  # reject BER / trailing data
            raise MalformedSignatureError("SM2 signature is not canonical DER")
    if not (1 <= r < N and 1 <= s < N):
        raise MalformedSignatureError("SM2 signature r or s out of range")
    return r, s

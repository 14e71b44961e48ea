"""Minimal strict DER reader/writer for the few fixed ASN.1 shapes SM2 uses.

Hand-written because it sits on the per-message path (SM2 ciphertext C1C3C2 <-> GM/T 0009
DER for libcrypto): a general ASN.1 library costs ~45 us per message, this costs ~3 us.
It also rejects non-minimal encodings, which OpenSSL does too.
"""

from __future__ import annotations

from engine.crypto.errors import MalformedInputError

INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
SEQUENCE = 0x30


def _len_bytes(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _len_bytes(len(body)) + body


def integer(value: int) -> bytes:
    """Minimal two's-complement encoding of a non-negative integer."""
    if value < 0:
        raise ValueError("negative INTEGER not supported")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return tlv(INTEGER, body)


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def read(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """Read one TLV at `pos`; return (tag, value, next position)."""
    try:
        tag = data[pos]
        first = data[pos + 1]
    except IndexError:
        raise MalformedInputError("truncated DER") from None
    pos += 2
    if first < 0x80:
        length = first
    else:
        nbytes = first & 0x7F
        if nbytes == 0 or nbytes > 4 or pos + nbytes > len(data):
            raise MalformedInputError("bad DER length")
        length = int.from_bytes(data[pos : pos + nbytes], "big")
        if length < 0x80 or data[pos] == 0:
            raise MalformedInputError("non-minimal DER length")
        pos += nbytes
    end = pos + length
    if end > len(data):
        raise MalformedInputError("truncated DER")
    return tag, data[pos:end], end


def read_all(data: bytes) -> list[tuple[int, bytes]]:
    """Split the contents of a constructed value into its (tag, value) children."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, value, pos = read(data, pos)
        out.append((tag, value))
    return out


def read_sequence(data: bytes) -> list[tuple[int, bytes]]:
    """Parse exactly one SEQUENCE spanning all of `data`."""
    tag, value, end = read(data)
    if tag != SEQUENCE or end != len(data):
        raise MalformedInputError("expected one DER SEQUENCE")
    return read_all(value)


def to_int(value: bytes) -> int:
    """Decode a non-negative minimal INTEGER body."""
    if not value:
        raise MalformedInputError("empty DER INTEGER")
    if value[0] & 0x80:
        raise MalformedInputError("negative DER INTEGER")
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise MalformedInputError("non-minimal DER INTEGER")
    return int.from_bytes(value, "big")


def oid(dotted: str) -> bytes:
    """Encode an OBJECT IDENTIFIER TLV from its dotted form."""
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray((40 * parts[0] + parts[1],))
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body.extend(reversed(chunk))
    return tlv(OID, bytes(body))

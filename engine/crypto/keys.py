"""SM2 key material: parsing (PEM, DER, hex, base64), validation and export.

Platforms hand out SM2 keys in every shape: PEM (SubjectPublicKeyInfo, PKCS#8, SEC1),
bare hex (x||y with or without 04, d as 64 hex), or base64 of any of those. All are parsed
here into one canonical form so the SM2 backends only ever see validated integers.
`cryptography` cannot load SM2 keys at all ("Curve 1.2.156.10197.1.301 is not supported"),
hence the small parser. Public points are always checked to lie on the curve.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from engine.crypto import _der
from engine.crypto.errors import KeyFormatError, MalformedInputError

# SM2 recommended curve (GB/T 32918.5).
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_SM2 = "1.2.156.10197.1.301"
_ALG_ID = _der.sequence(_der.oid(OID_EC_PUBLIC_KEY), _der.oid(OID_SM2))
_OID_SM2_TLV = _der.oid(OID_SM2)

DEFAULT_SIGNER_ID = b"1234567812345678"
"""GB/T 35276 default distinguishing ID, used unless a profile sets another."""


def on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _decompress(prefix: int, x: int) -> int:
    # p = 3 (mod 4) for the SM2 prime, so the square root is a single exponentiation.
    rhs = (x * x * x + A * x + B) % P
    y = pow(rhs, (P + 1) // 4, P)
    if y * y % P != rhs:
        raise KeyFormatError("SM2 public key: compressed x is not on the curve")
    return y if (y & 1) == (prefix & 1) else P - y


def _scalar_mult_g(d: int) -> tuple[int, int]:
    """d*G through gmssl's point arithmetic (only at key-load time, so its speed does not matter)."""
    from gmssl.sm2 import CryptSM2, default_ecc_table

    xy = CryptSM2(private_key=None, public_key="")._kg(d, default_ecc_table["g"])
    return int(xy[:64], 16), int(xy[64:], 16)


@dataclass(frozen=True, slots=True, eq=True, repr=False)
class SM2PublicKey:
    """A validated SM2 public point. `native` caches per-backend handles (not compared)."""

    x: int
    y: int
    native: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not on_curve(self.x, self.y):
            raise KeyFormatError("SM2 public key: point is not on the SM2 curve")

    def xy(self) -> bytes:
        """x||y, 64 bytes (the form gmssl and many SDKs use)."""
        return self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big")

    def uncompressed(self) -> bytes:
        """04||x||y, 65 bytes."""
        return b"\x04" + self.xy()

    def to_der(self) -> bytes:
        """X.509 SubjectPublicKeyInfo DER."""
        return _der.sequence(_ALG_ID, _der.tlv(_der.BIT_STRING, b"\x00" + self.uncompressed()))

    def to_pem(self) -> str:
        return _pem("PUBLIC KEY", self.to_der())

    def to_hex(self, *, prefix: bool = True) -> str:
        return (self.uncompressed() if prefix else self.xy()).hex()

    def fingerprint(self) -> str:
        """Short, non-secret identifier for logs: first 16 hex of SHA-256(04||x||y)."""
        return hashlib.sha256(self.uncompressed()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"SM2PublicKey(fingerprint={self.fingerprint()})"


@dataclass(frozen=True, slots=True, eq=True, repr=False)
class SM2PrivateKey:
    """An SM2 private scalar with its public point. repr() never shows the scalar."""

    d: int
    public_key: SM2PublicKey
    native: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # d = n-1 is excluded: SM2 signing needs (1+d) invertible mod n.
        if not 1 <= self.d < N - 1:
            raise KeyFormatError("SM2 private key: scalar out of range")

    @classmethod
    def from_scalar(cls, d: int, public: SM2PublicKey | None = None) -> SM2PrivateKey:
        if not 1 <= d < N - 1:
            raise KeyFormatError("SM2 private key: scalar out of range")
        derived = SM2PublicKey(*_scalar_mult_g(d))
        if public is not None and public != derived:
            raise KeyFormatError("SM2 private key: embedded public key does not match the private scalar")
        return cls(d, derived)

    def scalar_bytes(self) -> bytes:
        return self.d.to_bytes(32, "big")

    def to_sec1_der(self) -> bytes:
        """SEC1 ECPrivateKey DER (with curve OID and public key)."""
        return _der.sequence(
            _der.integer(1),
            _der.tlv(_der.OCTET_STRING, self.scalar_bytes()),
            _der.tlv(0xA0, _OID_SM2_TLV),
            _der.tlv(0xA1, _der.tlv(_der.BIT_STRING, b"\x00" + self.public_key.uncompressed())),
        )

    def to_der(self) -> bytes:
        """PKCS#8 PrivateKeyInfo DER (what `openssl genpkey` writes)."""
        return _der.sequence(_der.integer(0), _ALG_ID, _der.tlv(_der.OCTET_STRING, self.to_sec1_der()))

    def to_pem(self) -> str:
        return _pem("PRIVATE KEY", self.to_der())

    def to_hex(self) -> str:
        return self.scalar_bytes().hex()

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self.public_key.fingerprint()})"


def generate_sm2_private_key() -> SM2PrivateKey:
    """A fresh key pair from the OS CSPRNG."""
    return SM2PrivateKey.from_scalar(secrets.randbelow(N - 2) + 1)


# --- parsing ----------------------------------------------------------------------------

_PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _pem(label: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _pem_blocks(text: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for label, body in _PEM_RE.findall(text):
        try:
            out[label] = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise KeyFormatError(f"SM2 key: PEM block {label} is not valid base64") from None
    return out


def _point(data: bytes) -> SM2PublicKey:
    if len(data) == 65 and data[0] == 4:
        return SM2PublicKey(int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big"))
    if len(data) == 64:
        return SM2PublicKey(int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big"))
    if len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        return SM2PublicKey(x, _decompress(data[0], x))
    raise KeyFormatError(f"SM2 public key: {len(data)}-byte point is neither 04||x||y, x||y nor compressed")


def _check_alg(alg: bytes) -> None:
    items = _der.read_all(alg)
    if not items or _der.tlv(*items[0]) != _der.oid(OID_EC_PUBLIC_KEY):
        raise KeyFormatError("SM2 key: not an EC key")
    if len(items) > 1 and _der.tlv(*items[1]) != _OID_SM2_TLV:
        raise KeyFormatError("SM2 key: EC key on a curve other than SM2")


def _parse_spki(der: bytes) -> SM2PublicKey:
    items = _der.read_sequence(der)
    if len(items) != 2 or items[0][0] != _der.SEQUENCE or items[1][0] != _der.BIT_STRING:
        raise KeyFormatError("SM2 public key: not a SubjectPublicKeyInfo")
    _check_alg(items[0][1])
    bits = items[1][1]
    if not bits or bits[0] != 0:
        raise KeyFormatError("SM2 public key: bad BIT STRING")
    return _point(bits[1:])


def _parse_sec1(der: bytes) -> SM2PrivateKey:
    items = _der.read_sequence(der)
    if len(items) < 2 or items[0] != (_der.INTEGER, b"\x01") or items[1][0] != _der.OCTET_STRING:
        raise KeyFormatError("SM2 private key: not an ECPrivateKey")
    d = int.from_bytes(items[1][1], "big")
    public = None
    for tag, value in items[2:]:
        if tag == 0xA0 and value != _OID_SM2_TLV:
            raise KeyFormatError("SM2 private key: EC key on a curve other than SM2")
        if tag == 0xA1:
            btag, bits, _ = _der.read(value)
            if btag != _der.BIT_STRING or not bits or bits[0] != 0:
                raise KeyFormatError("SM2 private key: bad public key BIT STRING")
            public = _point(bits[1:])
    return SM2PrivateKey.from_scalar(d, public)


def _parse_pkcs8(der: bytes) -> SM2PrivateKey:
    items = _der.read_sequence(der)
    if len(items) < 3 or items[0][0] != _der.INTEGER or items[1][0] != _der.SEQUENCE:
        raise KeyFormatError("SM2 private key: not a PKCS#8 PrivateKeyInfo")
    _check_alg(items[1][1])
    if items[2][0] != _der.OCTET_STRING:
        raise KeyFormatError("SM2 private key: not a PKCS#8 PrivateKeyInfo")
    return _parse_sec1(items[2][1])


def _binary_forms(material: str | bytes) -> list[bytes]:
    """Candidate binary decodings of textual key material: hex first, then base64."""
    if isinstance(material, bytes):
        try:
            text = material.decode("ascii")
        except UnicodeDecodeError:
            return [material]
        forms = [material]
    else:
        text, forms = material, []
    compact = "".join(text.split())
    if re.fullmatch(r"(0[xX])?[0-9a-fA-F]+", compact) and len(compact) % 2 == 0:
        forms.insert(0, bytes.fromhex(compact.removeprefix("0x").removeprefix("0X")))
    with contextlib.suppress(binascii.Error, ValueError):
        forms.append(base64.b64decode(compact, validate=True))
    return forms


def load_sm2_public_key(material: str | bytes | SM2PublicKey | SM2PrivateKey) -> SM2PublicKey:
    """Parse an SM2 public key: PEM/DER SubjectPublicKeyInfo, hex or base64 of 04||x||y, x||y,
    a compressed point, or of the DER. A private key yields its public key."""
    if isinstance(material, SM2PublicKey):
        return material
    if isinstance(material, SM2PrivateKey):
        return material.public_key
    text = material.decode("latin-1") if isinstance(material, bytes) else material
    if "-----BEGIN" in text:
        blocks = _pem_blocks(text)
        if "PUBLIC KEY" in blocks:
            return _safe(_parse_spki, blocks["PUBLIC KEY"])
        if "PRIVATE KEY" in blocks or "EC PRIVATE KEY" in blocks:
            return load_sm2_private_key(material).public_key
        raise KeyFormatError("SM2 public key: no PUBLIC KEY block in PEM")
    reason: KeyFormatError | None = None
    for raw in _binary_forms(material):
        if len(raw) in (64, 65, 33):
            try:
                return _point(raw)
            except KeyFormatError as exc:
                reason = exc
        if raw[:1] == b"\x30":
            try:
                return _parse_spki(raw)
            except KeyFormatError as exc:
                reason = exc
            except MalformedInputError:
                continue
    raise reason or KeyFormatError("SM2 public key: not PEM, DER, hex or base64 of a point or SubjectPublicKeyInfo")


def load_sm2_private_key(material: str | bytes | SM2PrivateKey) -> SM2PrivateKey:
    """Parse an SM2 private key: PEM/DER PKCS#8 or SEC1, or hex/base64 of the 32-byte scalar or DER."""
    if isinstance(material, SM2PrivateKey):
        return material
    text = material.decode("latin-1") if isinstance(material, bytes) else material
    if "-----BEGIN" in text:
        blocks = _pem_blocks(text)
        if "PRIVATE KEY" in blocks:
            return _safe(_parse_pkcs8, blocks["PRIVATE KEY"])
        if "EC PRIVATE KEY" in blocks:
            return _safe(_parse_sec1, blocks["EC PRIVATE KEY"])
        raise KeyFormatError("SM2 private key: no PRIVATE KEY block in PEM")
    for raw in _binary_forms(material):
        if len(raw) == 32:
            return SM2PrivateKey.from_scalar(int.from_bytes(raw, "big"))
        if raw[:1] == b"\x30":
            for parser in (_parse_pkcs8, _parse_sec1):
                try:
                    return parser(raw)
                except (KeyFormatError, MalformedInputError):
                    continue
    raise KeyFormatError("SM2 private key: not PEM, DER, or hex/base64 of a 32-byte scalar or DER")


def _safe(parser: Any, der: bytes) -> Any:
    try:
        return parser(der)
    except MalformedInputError:
        raise KeyFormatError("SM2 key: malformed DER") from None

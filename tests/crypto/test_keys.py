"""SM2 key parsing in every shape platforms hand out, including gmssl's problem keys."""

from __future__ import annotations

import base64

import pytest

from engine.crypto.errors import KeyFormatError
from engine.crypto.keys import (
    GX,
    GY,
    P,
    SM2PrivateKey,
    SM2PublicKey,
    _pem,
    generate_sm2_private_key,
    load_sm2_private_key,
    load_sm2_public_key,
)
from engine.crypto.sm2 import SM2Backend, sm2_decrypt, sm2_encrypt, sm2_sign, sm2_verify


def test_public_key_forms() -> None:
    k = generate_sm2_private_key().public_key
    forms = [
        k.to_pem(),
        k.to_der(),
        base64.b64encode(k.to_der()).decode(),
        k.to_hex(),
        k.to_hex(prefix=False),
        k.to_hex().upper(),
        base64.b64encode(k.uncompressed()).decode(),
        base64.b64encode(k.xy()).decode(),
        bytes([2 + (k.y & 1)]) + k.x.to_bytes(32, "big"),
    ]
    for f in forms:
        assert load_sm2_public_key(f) == k


def test_private_key_forms() -> None:
    k = generate_sm2_private_key()
    sec1_pem = _pem("EC PRIVATE KEY", k.to_sec1_der())
    for f in (k.to_pem(), k.to_der(), k.to_hex(), base64.b64encode(k.scalar_bytes()).decode(), k.to_sec1_der(), sec1_pem):
        assert load_sm2_private_key(f) == k
    assert load_sm2_public_key(k.to_pem()) == k.public_key


def test_bad_keys_rejected() -> None:
    k = generate_sm2_private_key().public_key
    with pytest.raises(KeyFormatError, match="not on the SM2 curve"):
        load_sm2_public_key(k.x.to_bytes(32, "big") + ((k.y + 1) % P).to_bytes(32, "big"))
    with pytest.raises(KeyFormatError):
        load_sm2_public_key("not a key")
    with pytest.raises(KeyFormatError):
        load_sm2_private_key("00" * 32)
    other = generate_sm2_private_key().public_key
    with pytest.raises(KeyFormatError, match="does not match"):
        SM2PrivateKey.from_scalar(generate_sm2_private_key().d, other)


def test_repr_hides_private_scalar() -> None:
    k = generate_sm2_private_key()
    text = repr(k) + str(k) + repr(k.public_key)
    assert k.to_hex() not in text and str(k.d) not in text


def _key_with_x_prefix(first_byte: int) -> SM2PrivateKey:
    """Walk d = 2, 3, ... (affine point addition, cheap) until x starts with `first_byte`."""
    lam = (3 * GX * GX - 3) * pow(2 * GY, -1, P) % P
    x = (lam * lam - 2 * GX) % P
    y, d = (lam * (GX - x) - GY) % P, 2
    while x >> 248 != first_byte:
        # affine addition P + G
        lam = (GY - y) * pow(GX - x, -1, P) % P
        nx = (lam * lam - x - GX) % P
        y, x = (lam * (x - nx) - y) % P, nx
        d += 1
    return SM2PrivateKey(d, SM2PublicKey(x, y))


@pytest.mark.parametrize("first", [0x04, 0x00, 0x40])
def test_keys_that_break_naive_gmssl_use(backend: SM2Backend, first: int) -> None:
    """x starting 04/0 is mangled by gmssl's lstrip('04') unless the recipe is applied."""
    k = _key_with_x_prefix(first)
    assert SM2PrivateKey.from_scalar(k.d) == k
    for layout in ("C1C3C2", "DER"):
        ct = sm2_encrypt(k.public_key, b"data", layout=layout, backend=backend)  # type: ignore[arg-type]
        assert sm2_decrypt(k, ct, layout=layout, backend=backend) == b"data"  # type: ignore[arg-type]
    sm2_verify(k.public_key, b"m", sm2_sign(k, b"m", backend=backend), backend=backend)
    assert load_sm2_public_key(k.public_key.to_hex()) == k.public_key

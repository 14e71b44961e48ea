"""Known-answer vectors: GB/T 32905 (SM3), GB/T 32907 (SM4), for every implementation in the engine."""

from __future__ import annotations

import pytest

from engine.crypto import sm3 as sm3_mod
from engine.crypto.sm2 import SM2Backend
from engine.crypto.sm4 import sm4_cbc_decrypt, sm4_cbc_encrypt, sm4_ecb_decrypt, sm4_ecb_encrypt

SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
SM3_ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM4_CT = "681edf34d206965e86b3e94f536e4246"

SM3_IMPLS = {"cryptography": sm3_mod.sm3_cryptography, "default": sm3_mod.sm3}
if sm3_mod.HASHLIB_HAS_SM3:
    SM3_IMPLS["hashlib"] = sm3_mod.sm3_hashlib


@pytest.mark.parametrize("impl", sorted(SM3_IMPLS))
def test_sm3_vectors_library(impl: str) -> None:
    f = SM3_IMPLS[impl]
    assert f(b"abc").hex() == SM3_ABC
    assert f(b"abcd" * 16).hex() == SM3_ABCD16


def test_sm3_vectors_backend(backend: SM2Backend) -> None:
    assert backend.sm3(b"abc").hex() == SM3_ABC
    assert backend.sm3(b"abcd" * 16).hex() == SM3_ABCD16


def test_sm4_vector_backend(backend: SM2Backend) -> None:
    assert backend.sm4_ecb_block(SM4_KEY, SM4_KEY).hex() == SM4_CT


def test_sm4_vector_library() -> None:
    assert sm4_ecb_encrypt(SM4_KEY, SM4_KEY, padding=False).hex() == SM4_CT
    assert sm4_ecb_decrypt(SM4_KEY, bytes.fromhex(SM4_CT), padding=False) == SM4_KEY


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 1000])
def test_sm4_pkcs7_round_trip(n: int) -> None:
    data = bytes(range(256)) * 4
    data = data[:n]
    iv = bytes(16)
    ct = sm4_cbc_encrypt(SM4_KEY, iv, data)
    assert len(ct) == (n // 16 + 1) * 16
    assert sm4_cbc_decrypt(SM4_KEY, iv, ct) == data
    assert sm4_ecb_decrypt(SM4_KEY, sm4_ecb_encrypt(SM4_KEY, data)) == data


def test_hmac_sm3_matches_rfc2104_construction() -> None:
    key, msg = b"k" * 20, b"message"
    block = 64
    k = key.ljust(block, b"\0")
    inner = sm3_mod.sm3(bytes(b ^ 0x36 for b in k) + msg)
    expected = sm3_mod.sm3(bytes(b ^ 0x5C for b in k) + inner)
    assert sm3_mod.hmac_sm3(key, msg) == expected


# notes/001 §3.5: SM4-ECB + PKCS#7 + UTF-8 + base64, key 000102..0f (computed independently there).
XJ_KEY = bytes(range(16))
XJ_VECTORS = [
    ("ok", "hy53PTO8xCNTTUl85dVLbQ=="),
    ("<root />", "xh2ho1hMmxyv8kDcHthYkw=="),
    (
        "<root><id_no>650102199001011234</id_no><id_type>01</id_type></root>",
        "GHQhlTmJpRIK9QY7qql6tLfEu81VirxjuvFfeQanpBlF7IQuG6TSUJRm+2X+LqTYZ8kUD1KoHYzBBBS0ePXhWpaxshYFbl6H3IW57X2tKgg=",
    ),
]


@pytest.mark.parametrize(("plain", "b64"), XJ_VECTORS)
def test_xinjiang_sm4_ecb_vectors(plain: str, b64: str) -> None:
    import base64

    assert base64.b64encode(sm4_ecb_encrypt(XJ_KEY, plain.encode())).decode() == b64

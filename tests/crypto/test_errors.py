"""Each failure has its own clear error, never garbage plaintext, and never leaks key or plaintext."""

from __future__ import annotations

import os

import pytest

from engine.crypto import aes, rsa, sm4
from engine.crypto.errors import (
    BadSignatureError,
    CryptoError,
    DecryptionError,
    IntegrityError,
    KeyFormatError,
    MalformedCiphertextError,
    MalformedInputError,
    MalformedSignatureError,
    MissingReplayFieldError,
    PaddingError,
    ReplayedNonceError,
    StaleTimestampError,
)
from engine.crypto.keys import generate_sm2_private_key
from engine.crypto.replay import MemoryNonceStore, ReplayGuard
from engine.crypto.signer import Canonicalizer, DigestSigner
from engine.crypto.sm2 import SM2Backend, sm2_decrypt, sm2_encrypt, sm2_sign, sm2_verify

SECRET_TEXT = b"650102199001011234"
KEY = generate_sm2_private_key()
OTHER = generate_sm2_private_key()


def _flip(data: bytes, i: int) -> bytes:
    b = bytearray(data)
    b[i] ^= 0x01
    return bytes(b)


def _no_leak(exc: BaseException, *secrets: bytes) -> None:
    text = str(exc) + repr(exc)
    for s in secrets:
        assert s.hex() not in text.lower()
        assert s.decode("latin-1") not in text


# --- tampered ciphertext ------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["C1C3C2", "C1C2C3", "DER"])
def test_tampered_sm2_c2_or_c3_is_integrity_error(backend: SM2Backend, layout: str) -> None:
    ct = sm2_encrypt(KEY.public_key, SECRET_TEXT, layout=layout, backend=backend)  # type: ignore[arg-type]
    for i in (len(ct) - 1, len(ct) - 30):  # inside C2 or C3 for every layout
        with pytest.raises(IntegrityError) as e:
            sm2_decrypt(KEY, _flip(ct, i), layout=layout, backend=backend)  # type: ignore[arg-type]
        _no_leak(e.value, SECRET_TEXT, KEY.scalar_bytes())


def test_tampered_sm2_c1_is_malformed(backend: SM2Backend) -> None:
    ct = sm2_encrypt(KEY.public_key, SECRET_TEXT, backend=backend)
    with pytest.raises(MalformedCiphertextError):
        sm2_decrypt(KEY, _flip(ct, 10), backend=backend)
    with pytest.raises(MalformedCiphertextError):
        sm2_decrypt(KEY, ct[:90], backend=backend)


def test_tampered_gcm_is_integrity_error() -> None:
    key, nonce = os.urandom(16), os.urandom(12)
    ct = aes.aes_gcm_encrypt(key, nonce, SECRET_TEXT)
    with pytest.raises(IntegrityError):
        aes.aes_gcm_decrypt(key, nonce, _flip(ct, 0))


def test_tampered_rsa_is_decryption_error() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa as crsa

    priv = crsa.generate_private_key(65537, 2048)
    ct = rsa.rsa_encrypt(priv.public_key(), SECRET_TEXT, pad="oaep-sha256")
    with pytest.raises(DecryptionError):
        rsa.rsa_decrypt(priv, _flip(ct, 5), pad="oaep-sha256")


# --- wrong key ----------------------------------------------------------------------------


def test_wrong_sm2_key_is_integrity_error(backend: SM2Backend) -> None:
    ct = sm2_encrypt(KEY.public_key, SECRET_TEXT, backend=backend)
    with pytest.raises(IntegrityError, match="another key") as e:
        sm2_decrypt(OTHER, ct, backend=backend)
    _no_leak(e.value, SECRET_TEXT, OTHER.scalar_bytes(), KEY.scalar_bytes())


def test_wrong_gcm_key_is_integrity_error() -> None:
    nonce = os.urandom(12)
    ct = aes.aes_gcm_encrypt(os.urandom(16), nonce, SECRET_TEXT)
    with pytest.raises(IntegrityError):
        aes.aes_gcm_decrypt(os.urandom(16), nonce, ct)


def test_wrong_key_size_is_key_format_error() -> None:
    with pytest.raises(KeyFormatError, match="16"):
        sm4.sm4_ecb_encrypt(b"short", b"x")


# --- bad padding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_block",
    [bytes(16), b"A" * 15 + b"\x11", b"A" * 14 + b"\x01\x02", b"A" * 13 + b"\x02\x03\x03"],
    ids=["zero", "too-big", "inconsistent-2", "inconsistent-3"],
)
def test_bad_padding_is_padding_error(last_block: bytes) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    for enc, dec in (
        (lambda d: sm4.sm4_ecb_encrypt(key, d, padding=False), lambda c: sm4.sm4_ecb_decrypt(key, c)),
        (lambda d: sm4.sm4_cbc_encrypt(key, iv, d, padding=False), lambda c: sm4.sm4_cbc_decrypt(key, iv, c)),
        (lambda d: aes.aes_cbc_encrypt(key, iv, d, padding=False), lambda c: aes.aes_cbc_decrypt(key, iv, c)),
    ):
        with pytest.raises(PaddingError) as e:
            dec(enc(b"B" * 16 + last_block))
        _no_leak(e.value, key, b"B" * 16)


def test_partial_block_is_malformed() -> None:
    with pytest.raises(MalformedCiphertextError):
        sm4.sm4_ecb_decrypt(os.urandom(16), b"x" * 17)
    with pytest.raises(MalformedCiphertextError):
        sm4.sm4_ecb_decrypt(os.urandom(16), b"")


# --- bad signature ------------------------------------------------------------------------


def test_bad_sm2_signature(backend: SM2Backend) -> None:
    sig = sm2_sign(KEY, b"message", backend=backend)
    with pytest.raises(BadSignatureError):
        sm2_verify(KEY.public_key, b"messagE", sig, backend=backend)
    with pytest.raises(BadSignatureError):
        sm2_verify(OTHER.public_key, b"message", sig, backend=backend)
    with pytest.raises(BadSignatureError):
        sm2_verify(KEY.public_key, b"message", sig, uid=b"another id", backend=backend)
    raw = sm2_sign(KEY, b"message", fmt="raw", backend=backend)
    with pytest.raises(BadSignatureError):
        sm2_verify(KEY.public_key, b"message", _flip(raw, 40), fmt="raw", backend=backend)
    with pytest.raises(MalformedSignatureError):
        sm2_verify(KEY.public_key, b"message", b"\x30\x02\x01", backend=backend)


def test_bad_rsa_signature() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa as crsa

    priv = crsa.generate_private_key(65537, 2048)
    sig = rsa.rsa_sign_sha256(priv, b"message")
    with pytest.raises(BadSignatureError):
        rsa.rsa_verify_sha256(priv.public_key(), b"messagE", sig)


def test_bad_digest_signature() -> None:
    s = DigestSigner(Canonicalizer(fields=("a", "b")), "hmac-sm3", "hmac", output="hex")
    sig = s.sign({"a": "1", "b": "2"}, "k3y")
    s.verify({"a": "1", "b": "2"}, sig.upper(), "k3y")  # hex compare ignores case
    with pytest.raises(BadSignatureError) as e:
        s.verify({"a": "1", "b": "3"}, sig, "k3y")
    assert "k3y" not in str(e.value)
    with pytest.raises(BadSignatureError):
        s.verify({"a": "1", "b": "2"}, sig, "other")


# --- anti-replay --------------------------------------------------------------------------


def test_stale_timestamp() -> None:
    g = ReplayGuard(window_s=900, future_skew_s=60)
    now = 1_700_000_000.0
    ts, nonce = g.stamp(now - 901)
    with pytest.raises(StaleTimestampError, match="old"):
        g.check(ts, nonce, now)
    ts, nonce = g.stamp(now + 61)
    with pytest.raises(StaleTimestampError, match="future"):
        g.check(ts, nonce, now)
    ts, nonce = g.stamp(now - 899)
    g.check(ts, nonce, now)
    with pytest.raises(MissingReplayFieldError):
        g.check("not-a-number", nonce, now)


def test_reused_nonce() -> None:
    g = ReplayGuard(window_s=900, future_skew_s=0, unit="s")
    now = 1_700_000_000.0
    ts, nonce = g.stamp(now)
    g.check(ts, nonce, now)
    with pytest.raises(ReplayedNonceError):
        g.check(ts, nonce, now + 1)
    # Once the window has passed, the timestamp check rejects the replay first.
    with pytest.raises(StaleTimestampError):
        g.check(ts, nonce, now + 901)


def test_nonce_memory_expires_and_is_capped() -> None:
    store = MemoryNonceStore(max_entries=3)
    assert store.add("a", 0, 10)
    assert not store.add("a", 5, 10)
    assert store.add("a", 11, 10)  # expired, accepted again
    for n in "bcd":
        assert store.add(n, 12, 10)
    assert len(store) == 3


# --- malformed input ----------------------------------------------------------------------


def test_malformed_base64_is_malformed_input() -> None:
    from engine.crypto import codec

    with pytest.raises(MalformedInputError, match="wrapped key"):
        codec.decode("abc$", "base64", what="wrapped key")
    assert codec.decode("YWJj\nZA==", "base64") == b"abcd"


def test_every_error_is_a_crypto_error() -> None:
    from engine.crypto import errors
    from engine.errors import SpecbridgeError

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, CryptoError) and issubclass(cls, SpecbridgeError)

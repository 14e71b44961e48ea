"""Shared block-cipher plumbing for SM4 and AES (ECB/CBC with checked PKCS#7)."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, modes

from engine.crypto.errors import MalformedCiphertextError, MalformedInputError, PaddingError

BLOCK = 16


def pkcs7_pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes((n,)) * n


def pkcs7_unpad(data: bytes, what: str) -> bytes:
    """Strip PKCS#7 padding, checking every pad byte (gmssl and many SDKs check none)."""
    if not data or len(data) % BLOCK:
        raise MalformedCiphertextError(f"{what}: decrypted length is not a positive multiple of 16")
    n = data[-1]
    if not 1 <= n <= BLOCK or data[-n:] != bytes((n,)) * n:
        raise PaddingError(f"{what}: invalid PKCS#7 padding (altered ciphertext or wrong key)")
    return data[:-n]


def run(
    algorithm: CipherAlgorithm,
    mode: modes.Mode,
    data: bytes,
    *,
    encrypt: bool,
    padding: bool,
    what: str,
) -> bytes:
    """Encrypt or decrypt `data` with `algorithm`/`mode`, handling PKCS#7 when `padding`."""
    if encrypt:
        if padding:
            data = pkcs7_pad(data)
        elif len(data) % BLOCK:
            raise MalformedInputError(f"{what}: unpadded input must be a multiple of 16 bytes")
        ctx = Cipher(algorithm, mode).encryptor()
        return ctx.update(data) + ctx.finalize()
    if len(data) % BLOCK or (padding and not data):
        raise MalformedCiphertextError(f"{what}: ciphertext length {len(data)} is not a positive multiple of 16")
    ctx = Cipher(algorithm, mode).decryptor()
    out = ctx.update(data) + ctx.finalize()
    return pkcs7_unpad(out, what) if padding else out


def check_len(key: bytes, allowed: tuple[int, ...], what: str, exc: Callable[[str], Exception]) -> None:
    if len(key) not in allowed:
        raise exc(f"{what} must be {' or '.join(map(str, allowed))} bytes, got {len(key)}")

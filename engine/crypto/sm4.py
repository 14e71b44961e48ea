"""SM4 (GB/T 32907) ECB and CBC with checked PKCS#7, through `cryptography` (OpenSSL speed)."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import algorithms, modes

from engine.crypto import _block
from engine.crypto.errors import KeyFormatError, MalformedInputError

KEY_SIZE = 16
BLOCK_SIZE = 16


def _key(key: bytes) -> algorithms.SM4:
    _block.check_len(key, (16,), "SM4 key", KeyFormatError)
    return algorithms.SM4(key)


def _iv(iv: bytes) -> bytes:
    if len(iv) != 16:
        raise MalformedInputError(f"SM4 IV must be 16 bytes, got {len(iv)}")
    return iv


def sm4_ecb_encrypt(key: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.ECB(), data, encrypt=True, padding=padding, what="SM4-ECB")


def sm4_ecb_decrypt(key: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.ECB(), data, encrypt=False, padding=padding, what="SM4-ECB")


def sm4_cbc_encrypt(key: bytes, iv: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.CBC(_iv(iv)), data, encrypt=True, padding=padding, what="SM4-CBC")


def sm4_cbc_decrypt(key: bytes, iv: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.CBC(_iv(iv)), data, encrypt=False, padding=padding, what="SM4-CBC")

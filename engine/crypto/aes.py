"""AES ECB/CBC (checked PKCS#7) and GCM, through `cryptography`."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.crypto import _block
from engine.crypto.errors import IntegrityError, KeyFormatError, MalformedCiphertextError, MalformedInputError

GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16


def _key(key: bytes) -> algorithms.AES:
    _block.check_len(key, (16, 24, 32), "AES key", KeyFormatError)
    return algorithms.AES(key)


def _iv(iv: bytes) -> bytes:
    if len(iv) != 16:
        raise MalformedInputError(f"AES IV must be 16 bytes, got {len(iv)}")
    return iv


def aes_ecb_encrypt(key: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.ECB(), data, encrypt=True, padding=padding, what="AES-ECB")


def aes_ecb_decrypt(key: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.ECB(), data, encrypt=False, padding=padding, what="AES-ECB")


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.CBC(_iv(iv)), data, encrypt=True, padding=padding, what="AES-CBC")


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes, *, padding: bool = True) -> bytes:
    return _block.run(_key(key), modes.CBC(_iv(iv)), data, encrypt=False, padding=padding, what="AES-CBC")


def aes_gcm_encrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes | None = None) -> bytes:
    """Return ciphertext || 16-byte tag (the layout Java's AES/GCM/NoPadding produces)."""
    _block.check_len(key, (16, 24, 32), "AES key", KeyFormatError)
    if len(nonce) < 8:
        raise MalformedInputError("AES-GCM nonce must be at least 8 bytes")
    return AESGCM(key).encrypt(nonce, data, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes | None = None) -> bytes:
    _block.check_len(key, (16, 24, 32), "AES key", KeyFormatError)
    if len(data) < GCM_TAG_SIZE:
        raise MalformedCiphertextError("AES-GCM ciphertext shorter than its tag")
    try:
        return AESGCM(key).decrypt(nonce, data, aad)
    except InvalidTag:
        raise IntegrityError("AES-GCM tag mismatch (altered ciphertext, or the wrong key)") from None

"""SM3 hash and HMAC-SM3 at OpenSSL speed.

stdlib hashlib reaches the system libcrypto (cheapest per call); where that OpenSSL lacks
SM3 we fall back to `cryptography`'s bundled OpenSSL.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac

DIGEST_SIZE = 32


def _probe_hashlib() -> bool:
    try:
        return hashlib.new("sm3", b"abc").hexdigest().startswith("66c7f0f4")
    except ValueError:
        return False


HASHLIB_HAS_SM3 = _probe_hashlib()


def sm3_cryptography(data: bytes) -> bytes:
    """SM3 through `cryptography` (always available)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def sm3_hashlib(data: bytes) -> bytes:
    """SM3 through stdlib hashlib (system libcrypto); only when HASHLIB_HAS_SM3."""
    return hashlib.new("sm3", data).digest()


sm3 = sm3_hashlib if HASHLIB_HAS_SM3 else sm3_cryptography
"""SM3 digest of `data` (32 bytes), fastest available implementation."""


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC-SM3 (32 bytes)."""
    if HASHLIB_HAS_SM3:
        return hmac.new(key, data, "sm3").digest()
    h = c_hmac.HMAC(key, hashes.SM3())
    h.update(data)
    return h.finalize()

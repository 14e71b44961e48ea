"""SM2 (GB/T 32918): signatures and public-key encryption behind a backend interface.

Backends: "libcrypto" (system OpenSSL 3 via ctypes, fast) and "gmssl" (pure Python,
fallback and cross-check). Selection: an explicit `backend=` argument, else the process
default set by `set_default_backend()` or the SPECBRIDGE_SM2_BACKEND environment variable
("auto", "libcrypto", "gmssl"); "auto" prefers libcrypto when its probe succeeds.
"""

from __future__ import annotations

import os
import threading

from engine.crypto.errors import BackendUnavailableError, BadSignatureError, CryptoConfigError
from engine.crypto.keys import DEFAULT_SIGNER_ID, SM2PrivateKey, SM2PublicKey
from engine.crypto.sm2.base import SM2Backend
from engine.crypto.sm2.codec import (
    CipherLayout,
    SignatureFormat,
    SM2Ciphertext,
    decode_ciphertext,
    decode_signature,
    encode_ciphertext,
    encode_signature,
)

ENV_BACKEND = "SPECBRIDGE_SM2_BACKEND"
BACKEND_NAMES = ("libcrypto", "gmssl")

_lock = threading.Lock()
_instances: dict[str, SM2Backend] = {}
_failures: dict[str, str] = {}
_default: str | None = None


def _create(name: str) -> SM2Backend:
    if name == "libcrypto":
        from engine.crypto.sm2 import libcrypto

        return libcrypto.create()
    if name == "gmssl":
        from engine.crypto.sm2 import gmssl_backend

        return gmssl_backend.create()
    raise CryptoConfigError(f"unknown SM2 backend {name!r} (choose from auto, {', '.join(BACKEND_NAMES)})")


def _try(name: str) -> SM2Backend | None:
    with _lock:
        if name in _instances:
            return _instances[name]
        if name in _failures:
            return None
        try:
            _instances[name] = _create(name)
        except BackendUnavailableError as exc:
            _failures[name] = str(exc)
            return None
        except (ImportError, OSError) as exc:
            _failures[name] = f"{type(exc).__name__}: {exc}"
            return None
        return _instances[name]


def available_backends() -> dict[str, str | None]:
    """Each backend name mapped to None when usable, else the reason it is not."""
    out: dict[str, str | None] = {}
    for name in BACKEND_NAMES:
        out[name] = None if _try(name) else _failures.get(name, "unavailable")
    return out


def set_default_backend(name: str | None) -> None:
    """Set the process default ("auto", "libcrypto", "gmssl"); None returns to the environment setting."""
    global _default
    if name is not None and name != "auto" and name not in BACKEND_NAMES:
        raise CryptoConfigError(f"unknown SM2 backend {name!r}")
    _default = name


def get_backend(name: str | None = None) -> SM2Backend:
    """Resolve a backend by name; None means the configured default; "auto" means the fastest usable."""
    # "auto" in a profile still honours an operator's override (set_default_backend / environment).
    choice = name if name not in (None, "auto") else (_default or os.environ.get(ENV_BACKEND) or "auto")
    if choice == "auto":
        for candidate in BACKEND_NAMES:
            backend = _try(candidate)
            if backend is not None:
                return backend
        raise BackendUnavailableError(f"no SM2 backend is usable: {_failures}")
    if choice not in BACKEND_NAMES:
        raise CryptoConfigError(f"unknown SM2 backend {choice!r} (choose from auto, {', '.join(BACKEND_NAMES)})")
    backend = _try(choice)
    if backend is None:
        raise BackendUnavailableError(f"SM2 backend {choice!r} unavailable: {_failures.get(choice)}")
    return backend


def sm2_sign(
    key: SM2PrivateKey,
    message: bytes,
    *,
    uid: bytes = DEFAULT_SIGNER_ID,
    fmt: SignatureFormat = "der",
    backend: SM2Backend | str | None = None,
) -> bytes:
    """SM3withSM2 signature of `message` (Z_A computed with `uid`), DER or raw r||s."""
    b = backend if isinstance(backend, SM2Backend) else get_backend(backend)
    return encode_signature(*b.sign(key, message, uid), fmt)


def sm2_verify(
    key: SM2PublicKey,
    message: bytes,
    signature: bytes,
    *,
    uid: bytes = DEFAULT_SIGNER_ID,
    fmt: SignatureFormat | None = "der",
    backend: SM2Backend | str | None = None,
) -> None:
    """Raise BadSignatureError (or MalformedSignatureError) unless the signature verifies."""
    b = backend if isinstance(backend, SM2Backend) else get_backend(backend)
    if not b.verify(key, message, decode_signature(signature, fmt), uid):
        raise BadSignatureError("SM2 signature does not verify (altered message, another key, or another signer ID)")


def sm2_encrypt(
    key: SM2PublicKey,
    plaintext: bytes,
    *,
    layout: CipherLayout = "C1C3C2",
    prefix_04: bool = True,
    backend: SM2Backend | str | None = None,
) -> bytes:
    b = backend if isinstance(backend, SM2Backend) else get_backend(backend)
    return encode_ciphertext(b.encrypt(key, plaintext), layout, prefix_04=prefix_04)


def sm2_decrypt(
    key: SM2PrivateKey,
    ciphertext: bytes,
    *,
    layout: CipherLayout = "C1C3C2",
    prefix_04: bool | None = None,
    backend: SM2Backend | str | None = None,
) -> bytes:
    """Decrypt; C3 is always checked (IntegrityError), C1 always checked on the curve."""
    b = backend if isinstance(backend, SM2Backend) else get_backend(backend)
    return b.decrypt(key, decode_ciphertext(ciphertext, layout, prefix_04=prefix_04))


__all__ = [
    "BACKEND_NAMES",
    "CipherLayout",
    "SM2Backend",
    "SM2Ciphertext",
    "SignatureFormat",
    "available_backends",
    "get_backend",
    "set_default_backend",
    "sm2_decrypt",
    "sm2_encrypt",
    "sm2_sign",
    "sm2_verify",
]

"""The SM2 backend interface: what every implementation must provide.

Backends work on canonical values only (validated keys, SM2Ciphertext, (r, s)); wire
layouts live in codec.py so every backend speaks every layout identically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from engine.crypto.keys import SM2PrivateKey, SM2PublicKey
from engine.crypto.sm2.codec import SM2Ciphertext


class SM2Backend(ABC):
    """One SM2 implementation. Instances are stateless apart from per-key handle caches."""

    name: str

    @abstractmethod
    def sign(self, key: SM2PrivateKey, message: bytes, uid: bytes) -> tuple[int, int]:
        """SM3withSM2 over Z_A(uid) || message, with a CSPRNG nonce."""

    @abstractmethod
    def verify(self, key: SM2PublicKey, message: bytes, signature: tuple[int, int], uid: bytes) -> bool:
        """True iff (r, s) is a valid signature of message under key and uid."""

    @abstractmethod
    def encrypt(self, key: SM2PublicKey, plaintext: bytes) -> SM2Ciphertext:
        """Public-key encryption with a CSPRNG nonce."""

    @abstractmethod
    def decrypt(self, key: SM2PrivateKey, ciphertext: SM2Ciphertext) -> bytes:
        """Decrypt; raise IntegrityError when C3 does not match (never return unchecked plaintext)."""

    @abstractmethod
    def sm3(self, data: bytes) -> bytes:
        """This backend's own SM3 (used to cross-check vectors per backend)."""

    @abstractmethod
    def sm4_ecb_block(self, key: bytes, block: bytes) -> bytes:
        """This backend's own single-block SM4 encryption (vector cross-check)."""

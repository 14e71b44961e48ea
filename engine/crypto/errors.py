"""Crypto error hierarchy: one class per failure a caller must tell apart.

Messages name the operation and the reason only; they never carry key bytes,
plaintext or secret values (they end up in logs and journals).
"""

from __future__ import annotations

from engine.errors import SpecbridgeError


class CryptoError(SpecbridgeError):
    """Root of every error raised by engine.crypto."""


# --- configuration and keys -------------------------------------------------------------


class CryptoConfigError(CryptoError):
    """A crypto profile or setting is inconsistent (found when the profile is compiled)."""


class SecretError(CryptoError):
    """A secret reference (env:NAME, file:PATH, or a name in the bridge secrets) cannot be resolved."""


class KeyFormatError(CryptoError):
    """Key material could not be parsed (wrong format, wrong length, point not on the curve)."""


class KeyNotConfiguredError(CryptoError):
    """An operation needs a key the profile was compiled without (e.g. opening without the private key)."""


class BackendUnavailableError(CryptoError):
    """The requested SM2 backend cannot run on this host (e.g. libcrypto without SM2)."""


# --- decoding and decryption ------------------------------------------------------------


class MalformedInputError(CryptoError):
    """Input is not valid base64/hex, or has an impossible length or structure."""


class DecryptionError(CryptoError):
    """Ciphertext could not be decrypted; no plaintext is returned."""


class MalformedCiphertextError(DecryptionError, MalformedInputError):
    """The ciphertext's structure is wrong (bad DER, short, SM2 C1 not a curve point, partial block)."""


class IntegrityError(DecryptionError):
    """An integrity check failed (SM2 C3, GCM tag): the data was altered, or it was sealed for another key.

    The two cases are mathematically indistinguishable for SM2, RSA and GCM; the message says so.
    """


class PaddingError(DecryptionError):
    """PKCS#7 padding is invalid after block decryption: altered ciphertext or the wrong symmetric key."""


class KeyUnwrapError(DecryptionError):
    """A digital envelope's wrapped key cannot be unwrapped with our private key (wrong key pair, or altered)."""


# --- signatures -------------------------------------------------------------------------


class SignatureError(CryptoError):
    """Base for signature failures."""


class BadSignatureError(SignatureError):
    """The signature does not verify: the message or signature was altered, or signed with another key."""


class MalformedSignatureError(SignatureError, MalformedInputError):
    """The signature is not well-formed (wrong length, bad DER, bad encoding)."""


class MissingSignatureError(SignatureError):
    """The profile requires a signature but the message carries none."""


# --- anti-replay ------------------------------------------------------------------------


class ReplayError(CryptoError):
    """Base for anti-replay rejections."""


class StaleTimestampError(ReplayError):
    """The message timestamp is outside the accepted window."""


class ReplayedNonceError(ReplayError):
    """The nonce was already seen inside the memory window."""


class MissingReplayFieldError(ReplayError):
    """The timestamp or nonce is absent or unparseable."""


__all__ = [
    "BackendUnavailableError",
    "BadSignatureError",
    "CryptoConfigError",
    "CryptoError",
    "DecryptionError",
    "IntegrityError",
    "KeyFormatError",
    "KeyNotConfiguredError",
    "KeyUnwrapError",
    "MalformedCiphertextError",
    "MalformedInputError",
    "MalformedSignatureError",
    "MissingReplayFieldError",
    "MissingSignatureError",
    "PaddingError",
    "ReplayError",
    "ReplayedNonceError",
    "SecretError",
    "SignatureError",
    "StaleTimestampError",
]

"""RSA ("RSA2" in Chinese platform documents: 2048-bit, SHA256withRSA) through `cryptography`.

Keys arrive as PEM, or as bare base64 DER (the Java `getEncoded()` form platforms hand out:
X.509 SubjectPublicKeyInfo / PKCS#8), or as PKCS#1.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from engine.crypto.errors import BadSignatureError, DecryptionError, KeyFormatError

RsaPadding = Literal["pkcs1v15", "oaep-sha256", "oaep-sha1"]
"""Key-wrap padding: PKCS#1 v1.5 (most Chinese SDKs: Java "RSA/ECB/PKCS1Padding"), or OAEP."""

RSAPrivateKey = rsa.RSAPrivateKey
RSAPublicKey = rsa.RSAPublicKey


def _der_candidates(material: str | bytes) -> list[bytes]:
    if isinstance(material, bytes):
        if material.lstrip().startswith(b"-----"):
            return []
        out = [material]
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.b64decode(b"".join(material.split()), validate=True))
        return out
    try:
        return [base64.b64decode("".join(material.split()), validate=True)]
    except (binascii.Error, ValueError):
        return []


def _is_pem(material: str | bytes) -> bool:
    return (material.encode() if isinstance(material, str) else material).lstrip().startswith(b"-----BEGIN")


def load_rsa_private_key(material: str | bytes) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM (PKCS#8 or PKCS#1), DER, or base64 DER."""
    try:
        if _is_pem(material):
            data = material.encode() if isinstance(material, str) else material
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = None
            for der in _der_candidates(material):
                try:
                    key = serialization.load_der_private_key(der, password=None)
                    break
                except (ValueError, TypeError):
                    continue
            if key is None:
                raise ValueError
    except (ValueError, TypeError):
        raise KeyFormatError("RSA private key: not PEM, DER or base64 DER") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("RSA private key: the key is not an RSA key")
    return key


def load_rsa_public_key(material: str | bytes) -> rsa.RSAPublicKey:
    """Load an RSA public key from PEM/DER/base64 DER (SubjectPublicKeyInfo or PKCS#1), or a certificate."""
    key: object = None
    try:
        if _is_pem(material):
            data = material.encode() if isinstance(material, str) else material
            if b"CERTIFICATE" in data:
                from cryptography import x509

                key = x509.load_pem_x509_certificate(data).public_key()
            else:
                key = serialization.load_pem_public_key(data)
        else:
            for der in _der_candidates(material):
                for loader in (serialization.load_der_public_key, _der_cert_key):
                    try:
                        key = loader(der)
                        break
                    except (ValueError, TypeError):
                        continue
                if key is not None:
                    break
    except (ValueError, TypeError):
        key = None
    if key is None:
        raise KeyFormatError("RSA public key: not PEM, DER or base64 DER")
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("RSA public key: the key is not an RSA key")
    return key


def _der_cert_key(der: bytes) -> object:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_key()


def _wrap_padding(kind: RsaPadding) -> padding.AsymmetricPadding:
    if kind == "pkcs1v15":
        return padding.PKCS1v15()
    algo: hashes.HashAlgorithm = hashes.SHA256() if kind == "oaep-sha256" else hashes.SHA1()
    return padding.OAEP(mgf=padding.MGF1(algo), algorithm=algo, label=None)


def rsa_sign_sha256(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    """SHA256withRSA (PKCS#1 v1.5), the "RSA2" signature."""
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def rsa_verify_sha256(key: rsa.RSAPublicKey, message: bytes, signature: bytes) -> None:
    """Raise BadSignatureError unless `signature` is a valid SHA256withRSA signature of `message`."""
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise BadSignatureError("SHA256withRSA signature does not verify") from None


def rsa_encrypt(key: rsa.RSAPublicKey, data: bytes, *, pad: RsaPadding = "pkcs1v15") -> bytes:
    """Wrap a short secret (a symmetric key) for the holder of the private key."""
    try:
        return key.encrypt(data, _wrap_padding(pad))
    except ValueError:
        raise KeyFormatError("RSA: data too long for this key and padding") from None


def rsa_decrypt(key: rsa.RSAPrivateKey, data: bytes, *, pad: RsaPadding = "pkcs1v15") -> bytes:
    try:
        return key.decrypt(data, _wrap_padding(pad))
    except ValueError:
        raise DecryptionError("RSA decryption failed (altered ciphertext, or the wrong key)") from None

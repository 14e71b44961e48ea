"""Key material for a twin whose platform has a crypto profile but whose secrets were not given.

A twin plays the platform, so it holds the private halves. When the bridge configuration has no
real keys (tests, the demo, an integrator's first run), the twin makes its own: an SM2 or RSA
pair for each public/private pair the profile names, a random value for each shared secret.
`client_secrets` is what a client then needs (public keys and shared secrets, never the twin's
private keys), served at GET /__twin__/secrets on loopback so a test or the demo can configure
the bridge to talk to this twin.
"""

from __future__ import annotations

import secrets as _secrets
import string
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from engine.crypto.keys import generate_sm2_private_key
from engine.crypto.profile import CryptoProfile, SecretRef, Signature, SymmetricKey

_ALNUM = string.ascii_letters + string.digits


def _structs(obj: Any) -> Iterator[Any]:
    if isinstance(obj, msgspec.Struct):
        yield obj
        for name in obj.__struct_fields__:
            yield from _structs(getattr(obj, name))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _structs(v)


def _pair(algorithm: str) -> tuple[str, str]:
    """(public PEM, private PEM) for `sm2` or an RSA flavour."""
    if algorithm == "sm2":
        key = generate_sm2_private_key()
        return key.public_key.to_pem(), key.to_pem()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pub.decode(), pem.decode()


def fill_secrets(profile: CryptoProfile, given: Mapping[str, str | bytes]) -> tuple[dict[str, str | bytes], dict[str, str | bytes]]:
    """(all secrets the twin uses, what a client needs). Given values are kept; missing ones are made."""
    have: dict[str, str | bytes] = dict(given)
    client: dict[str, str | bytes] = {}
    private_names: set[str] = set()
    for s in _structs(profile):
        pub, priv = getattr(s, "public_key", None), getattr(s, "private_key", None)
        if isinstance(pub, SecretRef) or isinstance(priv, SecretRef):
            algorithm = str(getattr(s, "algorithm", "sm2"))
            if isinstance(priv, SecretRef) and not isinstance(s, Signature):  # a signer's key is the client's
                private_names.add(priv.secret)
            if isinstance(pub, SecretRef) and isinstance(priv, SecretRef) and priv.secret not in have:
                pub_pem, priv_pem = _pair("sm2" if algorithm == "sm2" else "rsa")
                have[priv.secret] = priv_pem
                have[pub.secret] = pub_pem
        if isinstance(s, SymmetricKey) and isinstance(s.value, SecretRef) and s.value.secret not in have:
            have[s.value.secret] = _secrets.token_hex(16) if s.key_bytes == "hex" else "".join(_secrets.choice(_ALNUM) for _ in range(16))
        for name in ("password", "key"):
            ref = getattr(s, name, None)
            if isinstance(ref, SecretRef) and ref.secret not in have:
                have[ref.secret] = _secrets.token_hex(16)
    for s in _structs(profile):
        for name in s.__struct_fields__:
            ref = getattr(s, name)
            if isinstance(ref, SecretRef) and ref.secret in have and ref.secret not in private_names:
                client[ref.secret] = have[ref.secret]
    return have, client

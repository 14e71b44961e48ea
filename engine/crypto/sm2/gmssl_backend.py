"""Pure-Python SM2 backend on gmssl 3.2.2: the portable fallback and the independent cross-check.

gmssl needs the recipe measured in ../notes/crypto.md §3, applied here:
1. the public key is passed as bare x||y and overwritten after construction (its
   constructor's `lstrip("04")` strips characters, mangling ~1/8 of keys);
2. mode=1 (C1C3C2); layouts are converted by codec.py, never by gmssl;
3. gmssl draws nonces from `random` (Mersenne Twister): signing passes its own CSPRNG k,
   and `gmssl.func.random_hex` is replaced with a CSPRNG for encryption;
4. gmssl never checks C3, so decryption is re-implemented here on gmssl's own point
   arithmetic, KDF and SM3 with a constant-time C3 comparison;
5. the signer ID is hard-coded in gmssl, so Z_A is computed here for any ID.
About 20-35x slower than libcrypto; fine as a fallback and for tests.
"""

from __future__ import annotations

import hmac
import secrets

import gmssl.func
from gmssl import sm3 as g_sm3
from gmssl.sm2 import CryptSM2
from gmssl.sm4 import SM4_ENCRYPT, CryptSM4

from engine.crypto.errors import BackendUnavailableError, IntegrityError, KeyFormatError
from engine.crypto.keys import GX, GY, A, B, N, SM2PrivateKey, SM2PublicKey
from engine.crypto.sm2.base import SM2Backend
from engine.crypto.sm2.codec import SM2Ciphertext

NAME = "gmssl"


def _csprng_hex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]


# Recipe step 3: gmssl looks `random_hex` up at call time, so this reaches CryptSM2.encrypt.
gmssl.func.random_hex = _csprng_hex


def _h(data: bytes) -> bytes:
    return bytes.fromhex(g_sm3.sm3_hash(list(data)))


def _z(uid: bytes, key: SM2PublicKey) -> bytes:
    if len(uid) * 8 > 0xFFFF:
        raise KeyFormatError("SM2 signer ID too long")
    parts = [(len(uid) * 8).to_bytes(2, "big"), uid]
    parts += [v.to_bytes(32, "big") for v in (A, B, GX, GY, key.x, key.y)]
    return _h(b"".join(parts))


class GmsslBackend(SM2Backend):
    """SM2 on gmssl with the interop and safety recipe applied."""

    name = NAME

    def _obj(self, key: SM2PublicKey | SM2PrivateKey) -> CryptSM2:
        cached = key.native.get(NAME)
        if cached is None:
            pub = key.public_key if isinstance(key, SM2PrivateKey) else key
            xy = pub.to_hex(prefix=False)
            d_hex = f"{key.d:064x}" if isinstance(key, SM2PrivateKey) else None
            cached = CryptSM2(private_key=d_hex, public_key=xy, mode=1, asn1=False)
            cached.public_key = xy  # recipe step 1
            key.native[NAME] = cached
        return cached

    def sign(self, key: SM2PrivateKey, message: bytes, uid: bytes) -> tuple[int, int]:
        e = _h(_z(uid, key.public_key) + message)
        obj = self._obj(key)
        while True:
            k = "%064x" % (secrets.randbelow(N - 1) + 1)
            sig = obj.sign(e, k)
            if sig is not None:  # r == 0, r + k == n or s == 0: draw another k
                return int(sig[:64], 16), int(sig[64:], 16)

    def verify(self, key: SM2PublicKey, message: bytes, signature: tuple[int, int], uid: bytes) -> bool:
        e = _h(_z(uid, key) + message)
        return bool(self._obj(key).verify("{:064x}{:064x}".format(*signature), e))

    def encrypt(self, key: SM2PublicKey, plaintext: bytes) -> SM2Ciphertext:
        if not plaintext:
            raise KeyFormatError("SM2 cannot encrypt an empty message")
        obj = self._obj(key)
        for _ in range(8):
            out = obj.encrypt(plaintext)
            if out is not None:  # None when the KDF output is all zero: retry with a new nonce
                c1, c3, c2 = out[:64], out[64:96], out[96:]
                return SM2Ciphertext(int.from_bytes(c1[:32], "big"), int.from_bytes(c1[32:], "big"), c3, c2)
        raise BackendUnavailableError("gmssl: SM2 encryption kept failing")

    def decrypt(self, key: SM2PrivateKey, ciphertext: SM2Ciphertext) -> bytes:
        obj = self._obj(key)
        xy = obj._kg(key.d, f"{ciphertext.x:064x}{ciphertext.y:064x}")
        if xy is None:
            raise IntegrityError("SM2 C3 check failed (ciphertext altered, or encrypted for another key)")
        n = len(ciphertext.c2)
        t = bytes.fromhex(g_sm3.sm3_kdf(xy.encode("utf8"), n))
        if not any(t):
            raise IntegrityError("SM2 KDF produced zeros (ciphertext altered)")
        m = bytes(a ^ b for a, b in zip(ciphertext.c2, t, strict=True))
        x2, y2 = bytes.fromhex(xy[:64]), bytes.fromhex(xy[64:128])
        if not hmac.compare_digest(_h(x2 + m + y2), ciphertext.c3):
            raise IntegrityError("SM2 C3 check failed (ciphertext altered, or encrypted for another key)")
        return m

    def sm3(self, data: bytes) -> bytes:
        return _h(data)

    def sm4_ecb_block(self, key: bytes, block: bytes) -> bytes:
        c = CryptSM4()
        c.set_key(key, SM4_ENCRYPT)
        return bytes(c.one_round(c.sk, list(block)))


def create() -> GmsslBackend:
    return GmsslBackend()

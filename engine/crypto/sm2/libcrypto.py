"""Fast SM2 backend: the system OpenSSL 3 libcrypto through ctypes.

Hand-written because no maintained Python package exposes SM2 at OpenSSL speed:
`cryptography` and pycryptodome have no SM2, and `cryptography`'s bundled OpenSSL does not
export its symbols. Debian/Ubuntu libssl3 ships SM2, SM3 and SM4 enabled. ctypes releases
the GIL during each call, so threads scale. Availability is probed once (library found,
OpenSSL >= 3.0, SM2 keys recognised, a sign/verify/encrypt/decrypt self-test passes);
otherwise `probe()` returns the reason and the registry falls back to gmssl.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

from engine.crypto.errors import BackendUnavailableError, IntegrityError, KeyFormatError
from engine.crypto.keys import SM2PrivateKey, SM2PublicKey
from engine.crypto.sm2.base import SM2Backend
from engine.crypto.sm2.codec import SM2Ciphertext, decode_ciphertext, decode_signature, encode_ciphertext, encode_signature

NAME = "libcrypto"
ENV_LIBRARY = "SPECBRIDGE_LIBCRYPTO"
"""Environment variable naming the libcrypto shared object to load (overrides the search)."""

_vp = ctypes.c_void_p
_sz = ctypes.c_size_t
_int = ctypes.c_int

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "OpenSSL_version_num": (ctypes.c_ulong, []),
    "ERR_clear_error": (None, []),
    "d2i_PUBKEY": (_vp, [_vp, ctypes.POINTER(_vp), ctypes.c_long]),
    "d2i_AutoPrivateKey": (_vp, [_vp, ctypes.POINTER(_vp), ctypes.c_long]),
    "EVP_PKEY_free": (None, [_vp]),
    "EVP_PKEY_is_a": (_int, [_vp, ctypes.c_char_p]),
    "EVP_PKEY_CTX_new": (_vp, [_vp, _vp]),
    "EVP_PKEY_CTX_free": (None, [_vp]),
    "EVP_PKEY_CTX_set1_id": (_int, [_vp, ctypes.c_char_p, _int]),
    "EVP_MD_CTX_new": (_vp, []),
    "EVP_MD_CTX_free": (None, [_vp]),
    "EVP_MD_CTX_set_pkey_ctx": (None, [_vp, _vp]),
    "EVP_sm3": (_vp, []),
    "EVP_sm4_ecb": (_vp, []),
    "EVP_DigestSignInit": (_int, [_vp, _vp, _vp, _vp, _vp]),
    "EVP_DigestSign": (_int, [_vp, ctypes.c_char_p, ctypes.POINTER(_sz), ctypes.c_char_p, _sz]),
    "EVP_DigestVerifyInit": (_int, [_vp, _vp, _vp, _vp, _vp]),
    "EVP_DigestVerify": (_int, [_vp, ctypes.c_char_p, _sz, ctypes.c_char_p, _sz]),
    "EVP_PKEY_encrypt_init": (_int, [_vp]),
    "EVP_PKEY_encrypt": (_int, [_vp, ctypes.c_char_p, ctypes.POINTER(_sz), ctypes.c_char_p, _sz]),
    "EVP_PKEY_decrypt_init": (_int, [_vp]),
    "EVP_PKEY_decrypt": (_int, [_vp, ctypes.c_char_p, ctypes.POINTER(_sz), ctypes.c_char_p, _sz]),
    "EVP_Digest": (_int, [ctypes.c_char_p, _sz, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint), _vp, _vp]),
    "EVP_CIPHER_CTX_new": (_vp, []),
    "EVP_CIPHER_CTX_free": (None, [_vp]),
    "EVP_CIPHER_CTX_set_padding": (_int, [_vp, _int]),
    "EVP_EncryptInit_ex": (_int, [_vp, _vp, _vp, ctypes.c_char_p, ctypes.c_char_p]),
    "EVP_EncryptUpdate": (_int, [_vp, ctypes.c_char_p, ctypes.POINTER(_int), ctypes.c_char_p, _int]),
}


def _candidates() -> list[str]:
    names: list[str] = []
    if os.environ.get(ENV_LIBRARY):
        names.append(os.environ[ENV_LIBRARY])
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    if sys.platform == "darwin":
        names += ["/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib", "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib"]
    names += ["libcrypto.so.3"]
    return names


def _load() -> ctypes.CDLL:
    errors: list[str] = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        try:
            for fn, (restype, argtypes) in _SIGNATURES.items():
                f = getattr(lib, fn)
                f.restype = restype
                f.argtypes = argtypes
        except AttributeError as exc:
            errors.append(f"{name}: missing symbol ({exc})")
            continue
        if lib.OpenSSL_version_num() < 0x30000000:
            errors.append(f"{name}: OpenSSL older than 3.0")
            continue
        return lib
    raise BackendUnavailableError("no usable libcrypto: " + "; ".join(errors))


class _PKey:
    """Owns one EVP_PKEY*; freed with the Python key object that caches it."""

    __slots__ = ("lib", "ptr")

    def __init__(self, lib: ctypes.CDLL, ptr: int) -> None:
        self.lib = lib
        self.ptr = ptr

    def __del__(self) -> None:
        if self.ptr:
            self.lib.EVP_PKEY_free(self.ptr)
            self.ptr = 0


class LibcryptoBackend(SM2Backend):
    """SM2 on the system OpenSSL 3 libcrypto."""

    name = NAME

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        self.lib = lib or _load()
        self._sm3 = self.lib.EVP_sm3()
        if not self._sm3:
            raise BackendUnavailableError("libcrypto has no SM3")

    # -- keys --------------------------------------------------------------------------

    def _d2i(self, fn: Any, der: bytes) -> int:
        buf = ctypes.create_string_buffer(der, len(der))
        p = _vp(ctypes.addressof(buf))
        ptr = fn(None, ctypes.byref(p), len(der))
        if not ptr:
            self.lib.ERR_clear_error()
            raise KeyFormatError("libcrypto rejected the SM2 key")
        if self.lib.EVP_PKEY_is_a(ptr, b"SM2") != 1:
            self.lib.EVP_PKEY_free(ptr)
            raise BackendUnavailableError("libcrypto does not recognise SM2 keys (built without SM2?)")
        return int(ptr)

    def _pub(self, key: SM2PublicKey) -> int:
        h = key.native.get(NAME)
        if h is None:
            h = key.native[NAME] = _PKey(self.lib, self._d2i(self.lib.d2i_PUBKEY, key.to_der()))
        return h.ptr

    def _priv(self, key: SM2PrivateKey) -> int:
        h = key.native.get(NAME)
        if h is None:
            h = key.native[NAME] = _PKey(self.lib, self._d2i(self.lib.d2i_AutoPrivateKey, key.to_der()))
        return h.ptr

    # -- signatures --------------------------------------------------------------------

    def _digest_ctx(self, pkey: int, uid: bytes, verify: bool) -> tuple[int, int]:
        lib = self.lib
        mctx = lib.EVP_MD_CTX_new()
        pctx = lib.EVP_PKEY_CTX_new(pkey, None)
        if not mctx or not pctx or lib.EVP_PKEY_CTX_set1_id(pctx, uid, len(uid)) <= 0:
            self._free_md(mctx, pctx)
            raise BackendUnavailableError("libcrypto: cannot set up an SM2 signing context")
        lib.EVP_MD_CTX_set_pkey_ctx(mctx, pctx)
        init = lib.EVP_DigestVerifyInit if verify else lib.EVP_DigestSignInit
        if init(mctx, None, self._sm3, None, pkey) <= 0:
            self._free_md(mctx, pctx)
            raise BackendUnavailableError("libcrypto: SM2 digest-sign init failed")
        return mctx, pctx

    def _free_md(self, mctx: int | None, pctx: int | None) -> None:
        # EVP_MD_CTX_set_pkey_ctx leaves ownership of pctx with us.
        if mctx:
            self.lib.EVP_MD_CTX_free(mctx)
        if pctx:
            self.lib.EVP_PKEY_CTX_free(pctx)
        self.lib.ERR_clear_error()

    def sign(self, key: SM2PrivateKey, message: bytes, uid: bytes) -> tuple[int, int]:
        mctx, pctx = self._digest_ctx(self._priv(key), uid, verify=False)
        try:
            out = ctypes.create_string_buffer(80)
            n = _sz(80)
            if self.lib.EVP_DigestSign(mctx, out, ctypes.byref(n), message, len(message)) <= 0:
                raise BackendUnavailableError("libcrypto: SM2 signing failed")
            return decode_signature(out.raw[: n.value], "der")
        finally:
            self._free_md(mctx, pctx)

    def verify(self, key: SM2PublicKey, message: bytes, signature: tuple[int, int], uid: bytes) -> bool:
        der = encode_signature(*signature, "der")
        mctx, pctx = self._digest_ctx(self._pub(key), uid, verify=True)
        try:
            return self.lib.EVP_DigestVerify(mctx, der, len(der), message, len(message)) == 1
        finally:
            self._free_md(mctx, pctx)

    # -- encryption --------------------------------------------------------------------

    def _pkey_op(self, pkey: int, data: bytes, encrypt: bool) -> bytes | None:
        lib = self.lib
        ctx = lib.EVP_PKEY_CTX_new(pkey, None)
        if not ctx:
            raise BackendUnavailableError("libcrypto: cannot create an SM2 context")
        try:
            init, op = (lib.EVP_PKEY_encrypt_init, lib.EVP_PKEY_encrypt) if encrypt else (lib.EVP_PKEY_decrypt_init, lib.EVP_PKEY_decrypt)
            n = _sz(0)
            if init(ctx) <= 0 or op(ctx, None, ctypes.byref(n), data, len(data)) <= 0:
                return None
            out = ctypes.create_string_buffer(n.value)
            if op(ctx, out, ctypes.byref(n), data, len(data)) <= 0:
                return None
            return out.raw[: n.value]
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
            lib.ERR_clear_error()

    def encrypt(self, key: SM2PublicKey, plaintext: bytes) -> SM2Ciphertext:
        if not plaintext:
            raise KeyFormatError("SM2 cannot encrypt an empty message")
        der = self._pkey_op(self._pub(key), plaintext, encrypt=True)
        if der is None:
            raise BackendUnavailableError("libcrypto: SM2 encryption failed")
        return decode_ciphertext(der, "DER")

    def decrypt(self, key: SM2PrivateKey, ciphertext: SM2Ciphertext) -> bytes:
        out = self._pkey_op(self._priv(key), encode_ciphertext(ciphertext, "DER"), encrypt=False)
        if out is None:
            # C1 was already checked on the curve, so the failure is OpenSSL's C3 comparison.
            raise IntegrityError("SM2 C3 check failed (ciphertext altered, or encrypted for another key)")
        return out

    # -- vector cross-checks -----------------------------------------------------------

    def sm3(self, data: bytes) -> bytes:
        out = ctypes.create_string_buffer(32)
        n = ctypes.c_uint(32)
        if self.lib.EVP_Digest(data, len(data), out, ctypes.byref(n), self._sm3, None) != 1:
            raise BackendUnavailableError("libcrypto: SM3 failed")
        return out.raw

    def sm4_ecb_block(self, key: bytes, block: bytes) -> bytes:
        lib = self.lib
        ctx = lib.EVP_CIPHER_CTX_new()
        try:
            out = ctypes.create_string_buffer(32)
            n = _int(0)
            if (
                lib.EVP_EncryptInit_ex(ctx, lib.EVP_sm4_ecb(), None, key, None) != 1
                or lib.EVP_CIPHER_CTX_set_padding(ctx, 0) != 1
                or lib.EVP_EncryptUpdate(ctx, out, ctypes.byref(n), block, len(block)) != 1
            ):
                raise BackendUnavailableError("libcrypto: SM4 failed")
            return out.raw[: n.value]
        finally:
            lib.EVP_CIPHER_CTX_free(ctx)


def create() -> LibcryptoBackend:
    """Load libcrypto and self-test SM2; raise BackendUnavailableError with the reason."""
    backend = LibcryptoBackend()
    key = SM2PrivateKey(
        0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8,
        SM2PublicKey(
            0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020,
            0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13,
        ),
    )
    ct = backend.encrypt(key.public_key, b"probe")
    sig = backend.sign(key, b"probe", b"1234567812345678")
    if backend.decrypt(key, ct) != b"probe" or not backend.verify(key.public_key, b"probe", sig, b"1234567812345678"):
        raise BackendUnavailableError("libcrypto SM2 self-test failed")
    return backend

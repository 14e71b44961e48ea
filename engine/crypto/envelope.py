"""Compiled crypto profiles: sans-I/O seal/open of requests, responses and fields.

`compile_profile` resolves every key once (parsing PEM, checking curve points, checking
key lengths against ciphers) so per-message work is only the cryptography itself. The
runtime and transports call:

    client (outbound bridge)              platform side (twin, inbound bridge)
    sealed = cp.seal_request(body, headers, params)
                                          opened = cp.open_request(body, headers, params)
                                          resp = cp.seal_response(body, headers, session=opened.session)
    plain = cp.open_response(body, headers, session=sealed.session)

and `encrypt_field` / `decrypt_field` / `encrypt_fields` / `decrypt_fields` for per-field
encryption. Nothing here knows a platform: every difference is a profile setting.
"""

from __future__ import annotations

import hashlib
import secrets as _secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from engine.crypto import aes, codec, sm4
from engine.crypto import rsa as _rsa
from engine.crypto.errors import (
    BadSignatureError,
    CryptoConfigError,
    DecryptionError,
    KeyFormatError,
    KeyNotConfiguredError,
    KeyUnwrapError,
    MalformedCiphertextError,
    MalformedInputError,
    MissingSignatureError,
    SecretError,
)
from engine.crypto.keys import load_sm2_private_key, load_sm2_public_key
from engine.crypto.profile import (
    Carry,
    CryptoProfile,
    Envelope,
    FieldCipher,
    SecretRef,
    Signature,
    SM2Options,
)
from engine.crypto.replay import MemoryNonceStore, NonceStore, ReplayGuard
from engine.crypto.signer import Canonicalizer, DigestSigner
from engine.crypto.sm2 import SM2Backend, get_backend, sm2_decrypt, sm2_encrypt

Role = Literal["client", "platform", "both"]
"""client seals requests and opens responses; platform opens requests and seals responses."""

_ALNUM = string.ascii_letters + string.digits
_KEY_SIZES = {"sm4": (16,), "aes": (16, 24, 32)}


@dataclass(frozen=True, slots=True)
class Session:
    """Per-exchange state a response needs: the request's symmetric key. repr() hides it."""

    key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "Session(key=<hidden>)"


@dataclass(slots=True)
class Message:
    """A message as the transports see it: body bytes, header and parameter maps."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    session: Session | None = None
    """Set by seal_request/open_request when an envelope is in use; pass it to the response call."""


# --- key resolution -----------------------------------------------------------------------


class _Keys:
    """Looks up named secrets and parses them once; reports missing ones by name only."""

    def __init__(self, secrets: Mapping[str, str | bytes], role: Role) -> None:
        self.secrets = secrets
        self.role = role

    def required(self, needed_by: tuple[Role, ...]) -> bool:
        return bool(needed_by) and (self.role == "both" or self.role in needed_by)

    def raw(self, ref: SecretRef | None, where: str, needed_by: tuple[Role, ...] = ("client", "platform")) -> Any:
        if ref is None:
            if self.required(needed_by):
                raise CryptoConfigError(f"crypto profile: {where} is required")
            return None
        if ref.secret not in self.secrets:
            if self.required(needed_by):
                raise SecretError(f"crypto profile needs secret {ref.secret!r} ({where}); the bridge configuration has none")
            return None
        return self.secrets[ref.secret]

    def text(self, ref: SecretRef | None, where: str, needed_by: tuple[Role, ...] = ("client", "platform")) -> str | None:
        v = self.raw(ref, where, needed_by)
        if v is None or isinstance(v, str):
            return v
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"secret {ref.secret!r} ({where}) is not text") from None  # type: ignore[union-attr]

    def load(self, ref: SecretRef | None, loader: Callable[[Any], Any], where: str, needed_by: tuple[Role, ...]) -> Any:
        v = self.raw(ref, where, needed_by)
        if v is None:
            return None
        try:
            return loader(v)
        except KeyFormatError as exc:
            raise KeyFormatError(f"secret {ref.secret!r} ({where}): {exc}") from None  # type: ignore[union-attr]


def _get(carry: Carry, headers: Mapping[str, str], params: Mapping[str, str]) -> str | None:
    src = headers if carry.in_ == "header" else params
    if carry.in_ == "header":
        # HTTP header names are case-insensitive.
        low = carry.name.lower()
        for k, v in src.items():
            if k.lower() == low:
                return v
        return None
    return src.get(carry.name)


def _put(carry: Carry, value: str, headers: dict[str, str], params: dict[str, str]) -> None:
    (headers if carry.in_ == "header" else params)[carry.name] = value


# --- pieces ------------------------------------------------------------------------------


class _PublicKeyCipher:
    """SM2 or RSA encryption of short values (wrapped keys, fields), with wire layout and encoding."""

    def __init__(
        self,
        algorithm: str,
        public: Any,
        private: Any,
        sm2: SM2Options,
        rsa_padding: _rsa.RsaPadding,
        encoding: codec.TextEncoding,
        backend: Callable[[], SM2Backend],
        what: str,
    ) -> None:
        self.algorithm, self.public, self.private = algorithm, public, private
        self.sm2, self.rsa_padding, self.encoding = sm2, rsa_padding, encoding
        self.backend, self.what = backend, what

    def encrypt(self, data: bytes) -> str:
        if self.public is None:
            raise KeyNotConfiguredError(f"{self.what}: no public key configured for encryption")
        if self.algorithm == "sm2":
            ct = sm2_encrypt(self.public, data, layout=self.sm2.layout, prefix_04=self.sm2.prefix_04, backend=self.backend())
        else:
            ct = _rsa.rsa_encrypt(self.public, data, pad=self.rsa_padding)
        return codec.encode(ct, self.encoding)

    def decrypt(self, text: str) -> bytes:
        if self.private is None:
            raise KeyNotConfiguredError(f"{self.what}: no private key configured for decryption")
        raw = codec.decode(text, self.encoding, what=self.what)
        if self.algorithm == "sm2":
            # Decryption accepts C1 with or without 04: peers disagree and the curve check disambiguates.
            return sm2_decrypt(self.private, raw, layout=self.sm2.layout, prefix_04=None, backend=self.backend())
        return _rsa.rsa_decrypt(self.private, raw, pad=self.rsa_padding)


class _Symmetric:
    """The envelope's payload cipher with its key and IV rules."""

    def __init__(self, env: Envelope, keys: _Keys) -> None:
        self.cipher = env.cipher
        family = env.cipher.split("-")[0]
        self.sizes = _KEY_SIZES[family]
        self.mode = env.cipher.split("-")[1]
        k, iv = env.key, env.iv
        self.key_spec = k
        if self.mode == "ecb" and iv.source != "none":
            raise CryptoConfigError(f"{env.cipher} takes no IV; set iv.source: none")
        if self.mode != "ecb" and iv.source == "none":
            raise CryptoConfigError(f"{env.cipher} needs an IV (iv.source fixed or random)")
        if self.mode == "gcm" and iv.source == "fixed":
            raise CryptoConfigError("aes-gcm with a fixed IV reuses nonces, which breaks GCM; use iv.source: random")
        self.iv_source, self.iv_carry = iv.source, iv.carry
        self.iv_size = 12 if self.mode == "gcm" else 16
        self.fixed_iv: bytes | None = None
        if iv.source == "fixed":
            if (iv.text is None) == (iv.hex is None):
                raise CryptoConfigError("iv.source fixed needs exactly one of iv.text, iv.hex")
            self.fixed_iv = iv.text.encode("ascii") if iv.text is not None else bytes.fromhex(iv.hex or "")
            if len(self.fixed_iv) != self.iv_size:
                raise CryptoConfigError(f"fixed IV must be {self.iv_size} bytes, got {len(self.fixed_iv)}")
        self.fixed_key: bytes | None = None
        if k.source == "random":
            if k.length not in self.sizes:
                raise CryptoConfigError(f"{env.cipher}: key.length {k.length} gives a key of the wrong size")
        elif k.source == "derived":
            pw = keys.text(k.password, "envelope.key.password")
            if pw is not None:
                self.fixed_key = self._check(self._derive(pw))
        else:
            text = keys.text(k.value, "envelope.key.value")
            if text is not None:
                self.fixed_key = self._check(self._from_text(text))

    def _from_text(self, text: str) -> bytes:
        if self.key_spec.key_bytes == "hex":
            try:
                return bytes.fromhex(text)
            except ValueError:
                raise KeyFormatError("envelope key text is not hex") from None
        return text.encode("ascii", "strict")

    def _derive(self, password: str) -> bytes:
        k = self.key_spec
        d = hashlib.new(k.hash, password.encode("utf-8")).digest()
        text = codec.encode(d, k.digest_text)
        if k.cut is not None:
            text = text[: k.cut]
        return self._from_text(text)

    def _check(self, key: bytes) -> bytes:
        if len(key) not in self.sizes:
            raise CryptoConfigError(
                f"{self.cipher}: the configured key rule yields {len(key)} bytes; need {' or '.join(map(str, self.sizes))}"
            )
        return key

    def new_key(self) -> bytes:
        k = self.key_spec
        if k.source != "random":
            if self.fixed_key is None:
                raise KeyNotConfiguredError("envelope key secret/password is not configured")
            return self.fixed_key
        if k.form == "bytes":
            return _secrets.token_bytes(k.length)
        if k.form == "alnum":
            return "".join(_secrets.choice(_ALNUM) for _ in range(k.length)).encode("ascii")
        return _secrets.token_hex(k.length)[: k.length].encode("ascii")

    def valid_key(self, key: bytes) -> bool:
        return len(key) in self.sizes

    def encrypt(self, key: bytes, data: bytes) -> tuple[bytes, bytes | None]:
        """Return (wire bytes, IV to carry separately or None)."""
        iv = self.fixed_iv if self.iv_source == "fixed" else _secrets.token_bytes(self.iv_size)
        c = self.cipher
        if c == "sm4-ecb":
            return sm4.sm4_ecb_encrypt(key, data), None
        if c == "aes-ecb":
            return aes.aes_ecb_encrypt(key, data), None
        assert iv is not None
        if c == "sm4-cbc":
            ct = sm4.sm4_cbc_encrypt(key, iv, data)
        elif c == "aes-cbc":
            ct = aes.aes_cbc_encrypt(key, iv, data)
        else:
            ct = aes.aes_gcm_encrypt(key, iv, data)
        if self.iv_source == "random":
            if self.iv_carry is None:
                return iv + ct, None
            return ct, iv
        return ct, None

    def decrypt(self, key: bytes, data: bytes, carried_iv: bytes | None) -> bytes:
        c = self.cipher
        if c == "sm4-ecb":
            return sm4.sm4_ecb_decrypt(key, data)
        if c == "aes-ecb":
            return aes.aes_ecb_decrypt(key, data)
        if self.iv_source == "fixed":
            iv = self.fixed_iv
        elif self.iv_carry is None:
            if len(data) < self.iv_size:
                raise MalformedCiphertextError("ciphertext shorter than its IV")
            iv, data = data[: self.iv_size], data[self.iv_size :]
        else:
            iv = carried_iv
        if iv is None or len(iv) != self.iv_size:
            raise MalformedCiphertextError("IV missing or of the wrong size")
        if c == "sm4-cbc":
            return sm4.sm4_cbc_decrypt(key, iv, data)
        if c == "aes-cbc":
            return aes.aes_cbc_decrypt(key, iv, data)
        return aes.aes_gcm_decrypt(key, iv, data)


class _Signer:
    """A compiled Signature recipe: its signer and canonical recipe looked up in the extension registry.

    Built-in digest signers over the built-in `pairs` recipe keep the key among the pairs (DigestSigner);
    every other combination signs the recipe's bytes through the signer's seam (engine.plugins.seams.Signer).
    """

    def __init__(self, sig: Signature, keys: _Keys, backend: Callable[[], SM2Backend], uid: bytes, where: str) -> None:
        from engine.plugins.builtin import SignOptions
        from engine.plugins.registry import current
        from engine.plugins.spec import profile_settings

        self.spec, self.backend, self.uid, self.where = sig, backend, uid, where
        reg = current()
        ext = reg.get("signer", sig.algorithm)
        if ext is None:
            raise CryptoConfigError(f"{where}.algorithm: {reg.missing('signer', sig.algorithm)}")
        recipe = reg.get("canonical", sig.canonical or "pairs")
        if recipe is None:
            raise CryptoConfigError(f"{where}.canonical: {reg.missing('canonical', sig.canonical or 'pairs')}")
        self.ext, self.recipe = ext, recipe
        names = [i.name for i in sig.inputs]
        self.canon = Canonicalizer(
            fields=tuple(names) if names else None,
            sort=sig.sort,
            pair=sig.pair,
            joiner=sig.joiner,
            skip_empty=sig.skip_empty,
            text_encoding=sig.text_encoding,
        )
        self.recipe_settings: Any = SignOptions(sig, uid, backend, where) if recipe.builtin else (
            profile_settings(recipe, sig.canonical_settings, f"{where}.canonical_settings"))
        self.digest: DigestSigner | None = None
        self.secret: str | None = None
        self.private: Any = None
        self.public: Any = None
        if not ext.builtin:
            self.settings: Any = profile_settings(ext, sig.settings, f"{where}.settings")
            self._plugin_keys(keys)
            return
        if sig.settings is not None:
            raise CryptoConfigError(f"{where}.settings: signer `{sig.algorithm}` takes no settings")
        self.settings = SignOptions(sig, uid, backend, where)
        if sig.algorithm in ("sm2", "rsa-sha256"):
            self.private = keys.load(sig.private_key, lambda raw: ext.impl.load_key(raw, private=True, settings=None),
                                     f"{where}.private_key", ("client",))
            self.public = keys.load(sig.public_key, lambda raw: ext.impl.load_key(raw, private=False, settings=None),
                                    f"{where}.public_key", ("platform",))
        else:
            self.digest = DigestSigner(
                self.canon,
                sig.algorithm,  # type: ignore[arg-type]
                sig.key_placement,
                sig.key_name,
                sig.output,  # type: ignore[arg-type]
            )
            if sig.key_placement != "none":
                self.secret = keys.text(sig.key, f"{where}.key")
            self.private = self.public = self.secret

    def _plugin_keys(self, keys: _Keys) -> None:
        """A plugin signer's keys: the shared `key` for both, else `private_key` to sign, `public_key` to verify."""
        sig, where = self.spec, self.where

        def load(raw: Any, private: bool, what: str) -> Any:
            if raw is None:
                return None
            return self._call(self.ext.impl.load_key, raw, returns=object, what=f"load_key ({what})", private=private)

        if sig.key is not None:
            self.private = self.public = load(keys.raw(sig.key, f"{where}.key"), True, f"{where}.key")
        else:
            self.private = load(keys.raw(sig.private_key, f"{where}.private_key", ("client",) if sig.private_key else ()), True,
                                f"{where}.private_key")
            self.public = load(keys.raw(sig.public_key, f"{where}.public_key", ("platform",) if sig.public_key else ()), False,
                               f"{where}.public_key")

    def _call(self, fn: Callable[..., Any], *args: Any, returns: Any, what: str, **kw: Any) -> Any:
        from engine.plugins.errors import ExtensionCryptoError
        from engine.plugins.guard import call

        if kw:
            return call(self.ext, lambda *a: fn(*a, **kw, settings=self.settings), *args, returns=returns, what=what,
                        error=ExtensionCryptoError)
        return call(self.ext, fn, *args, returns=returns, what=what, error=ExtensionCryptoError)

    def values(self, m: Message, ts: str | None, nonce: str | None, main_sig: str | None) -> dict[str, str]:
        out: dict[str, str] = {}
        parsed: Any = None
        for i in self.spec.inputs:
            src = i.key or i.name
            v: str | None
            if i.from_ == "header":
                v = _get(Carry(in_="header", name=src), m.headers, m.params)
            elif i.from_ == "param":
                v = m.params.get(src)
            elif i.from_ == "json":
                if parsed is None:
                    try:
                        parsed = msgspec.json.decode(m.body) if m.body else {}
                    except msgspec.DecodeError:
                        raise MalformedInputError(f"{self.where}: body is not JSON, cannot read signed fields") from None
                raw = parsed.get(src) if isinstance(parsed, dict) else None
                v = raw if isinstance(raw, str) or raw is None else msgspec.json.encode(raw).decode()
            elif i.from_ == "body":
                v = m.body.decode(self.spec.text_encoding)
            elif i.from_ == "literal":
                v = i.value
            elif i.from_ == "timestamp":
                v = ts
            elif i.from_ == "nonce":
                v = nonce
            else:
                v = main_sig
            out[i.name] = "" if v is None else v
        return out

    def _message(self, m: Message, ts: str | None, nonce: str | None, main_sig: str | None) -> bytes:
        """The bytes that are signed: the canonical recipe over the named inputs (or the body)."""
        values = self.values(m, ts, nonce, main_sig) if self.spec.inputs else {}
        if self.recipe.builtin:
            return self.recipe.impl(values, m.body, self.recipe_settings)  # type: ignore[no-any-return]
        from engine.plugins.errors import ExtensionCryptoError
        from engine.plugins.guard import call

        return call(self.recipe, self.recipe.impl, values, m.body, self.recipe_settings,  # type: ignore[no-any-return]
                    returns=bytes, what="building the canonical string", error=ExtensionCryptoError)

    def _needs_key(self, ref: SecretRef | None) -> bool:
        """Whether signing/verifying cannot go on without the key it lacks: built-in sm2/rsa always,
        a plugin signer when the recipe names a key (a keyless plugin signer gets None)."""
        if self.ext.builtin:
            return self.digest is None
        return ref is not None or self.spec.key is not None

    def _legacy_digest(self) -> bool:
        return self.digest is not None and self.recipe.builtin

    def sign(self, m: Message, ts: str | None = None, nonce: str | None = None, main_sig: str | None = None) -> str:
        s = self.spec
        if self._legacy_digest():
            assert self.digest is not None
            if not s.inputs:
                return self.digest.sign({"body": m.body.decode(s.text_encoding)}, self.secret)
            return self.digest.sign(self.values(m, ts, nonce, main_sig), self.secret)
        if self.private is None and self._needs_key(s.private_key):
            raise KeyNotConfiguredError(f"{self.where}: no private key configured for signing")
        return self._call(self.ext.impl.sign, self._message(m, ts, nonce, main_sig), self.private, self.settings, returns=str,  # type: ignore[no-any-return]
                          what="sign")

    def verify(self, m: Message, ts: str | None = None, nonce: str | None = None, main_sig: str | None = None) -> None:
        s = self.spec
        got = _get(s.carry, m.headers, m.params)
        if not got:
            if s.required:
                raise MissingSignatureError(f"{self.where}: message carries no {s.carry.name}")
            return
        if self._legacy_digest():
            assert self.digest is not None
            values = self.values(m, ts, nonce, main_sig) if s.inputs else {"body": m.body.decode(s.text_encoding)}
            self.digest.verify(values, got, self.secret)
            return
        if self.public is None and self._needs_key(s.public_key):
            raise KeyNotConfiguredError(f"{self.where}: no public key configured for verification")
        ok = self._call(self.ext.impl.verify, self._message(m, ts, nonce, main_sig), got, self.public, self.settings, returns=bool,
                        what="verify")
        if not ok:
            who = "" if self.ext.builtin else f" ({self.ext.label})"
            raise BadSignatureError(f"{self.where}: signature does not match (altered fields, or another key){who}")


# --- the compiled profile ------------------------------------------------------------------


class CompiledProfile:
    """Sans-I/O crypto for one platform, compiled from a CryptoProfile and the bridge's secrets."""

    def __init__(
        self,
        profile: CryptoProfile,
        secrets: Mapping[str, str | bytes],
        role: Role = "client",
        nonce_store: NonceStore | None = None,
    ) -> None:
        if role not in ("client", "platform", "both"):
            raise CryptoConfigError(f"unknown role {role!r}")
        self.profile = profile
        self.role = role
        self.uid = profile.signer_id.encode("utf-8")
        self._backend: SM2Backend | None = None
        keys = _Keys(secrets, role)

        self.env = profile.envelope
        self.sym: _Symmetric | None = None
        self.wrap: _PublicKeyCipher | None = None
        self.precomputed_wrap: str | None = None
        if self.env is not None:
            self.sym = _Symmetric(self.env, keys)
            w = self.env.wrap
            if w is not None:
                fixed_key = self.env.key.source != "random"
                if w.precomputed is not None:
                    if not fixed_key:
                        raise CryptoConfigError("wrap.precomputed needs a derived or secret key, not a random one")
                    self.precomputed_wrap = keys.text(w.precomputed, "envelope.wrap.precomputed", ("client",))
                pub_needed: tuple[Role, ...] = () if w.precomputed is not None else ("client",)
                # A platform holding a derived/secret key can open without unwrapping.
                priv_needed: tuple[Role, ...] = () if fixed_key else ("platform",)
                pub_loader, priv_loader = (
                    (load_sm2_public_key, load_sm2_private_key)
                    if w.algorithm == "sm2"
                    else (_rsa.load_rsa_public_key, _rsa.load_rsa_private_key)
                )
                self.wrap = _PublicKeyCipher(
                    w.algorithm,
                    keys.load(w.public_key, pub_loader, "envelope.wrap.public_key", pub_needed),
                    keys.load(w.private_key, priv_loader, "envelope.wrap.private_key", priv_needed),
                    w.sm2,
                    w.rsa_padding,
                    w.encoding,
                    self.backend,
                    "wrapped key",
                )
            elif self.env.key.source == "random":
                raise CryptoConfigError("a random envelope key must be wrapped (envelope.wrap), or the peer cannot read it")

        self.field_spec: FieldCipher | None = profile.fields
        self.field_cipher: _PublicKeyCipher | None = None
        self.encrypted_fields: frozenset[str] = frozenset()
        if profile.fields is not None:
            f = profile.fields
            pub_loader, priv_loader = (
                (load_sm2_public_key, load_sm2_private_key)
                if f.algorithm == "sm2"
                else (_rsa.load_rsa_public_key, _rsa.load_rsa_private_key)
            )
            self.field_cipher = _PublicKeyCipher(
                f.algorithm,
                keys.load(f.public_key, pub_loader, "fields.public_key", ("client",)),
                keys.load(f.private_key, priv_loader, "fields.private_key", ("platform",)),
                f.sm2,
                f.rsa_padding,
                f.encoding,
                self.backend,
                "encrypted field",
            )
            self.encrypted_fields = frozenset(f.fields)

        self.signer = _Signer(profile.signature, keys, self.backend, self.uid, "signature") if profile.signature else None

        self.replay: ReplayGuard | None = None
        self.replay_signer: _Signer | None = None
        ar = profile.anti_replay
        if ar is not None:
            self.replay = ReplayGuard(
                window_s=ar.window_s,
                future_skew_s=ar.future_skew_s,
                unit=ar.unit,
                nonce_format=ar.nonce_format,
                store=nonce_store or MemoryNonceStore(max_entries=ar.max_nonces),
            )
            if ar.signature is not None:
                self.replay_signer = _Signer(ar.signature, keys, self.backend, self.uid, "anti_replay.signature")

        self.steps: list[tuple[Any, Any]] = _steps(profile)
        """Plugin envelope steps with their settings, in profile order."""

    def _step(self, op: str, m: Message) -> None:
        from engine.plugins.errors import ExtensionCryptoError
        from engine.plugins.guard import call

        for ext, settings in self.steps if op == "seal" else reversed(self.steps):
            call(ext, getattr(ext.impl, op), m, settings, returns=type(None), what=op, error=ExtensionCryptoError)

    def backend(self) -> SM2Backend:
        """The SM2 backend this profile uses (resolved on first SM2 operation)."""
        if self._backend is None:
            self._backend = get_backend(self.profile.sm2_backend)
        return self._backend

    # -- envelope helpers ------------------------------------------------------------------

    def _seal_payload(self, m: Message, key: bytes) -> None:
        assert self.env is not None and self.sym is not None
        p = self.env.payload

        def enc(data: bytes) -> str:
            ct, iv = self.sym.encrypt(key, data)  # type: ignore[union-attr]
            if iv is not None and self.sym.iv_carry is not None:  # type: ignore[union-attr]
                _put(self.sym.iv_carry, codec.encode(iv, p.encoding), m.headers, m.params)  # type: ignore[union-attr]
            return codec.encode(ct, p.encoding)

        if p.target == "body":
            m.body = enc(m.body).encode("ascii")
        else:
            for name in p.params:
                if name in m.params:
                    m.params[name] = enc(m.params[name].encode(p.text_encoding))

    def _open_payload(self, m: Message, key: bytes) -> None:
        assert self.env is not None and self.sym is not None
        p = self.env.payload
        carried = None
        if self.sym.iv_carry is not None:
            t = _get(self.sym.iv_carry, m.headers, m.params)
            carried = codec.decode(t, p.encoding, what="IV") if t else None

        def dec(text: str | bytes, what: str) -> bytes:
            return self.sym.decrypt(key, codec.decode(text, p.encoding, what=what), carried)  # type: ignore[union-attr]

        if p.target == "body":
            m.body = dec(m.body, "encrypted body")
        else:
            for name in p.params:
                if name in m.params:
                    try:
                        m.params[name] = dec(m.params[name], f"parameter {name}").decode(p.text_encoding)
                    except UnicodeDecodeError:
                        raise DecryptionError(f"parameter {name} decrypted to bytes that are not {p.text_encoding}") from None

    def _wrap_key(self, m: Message, key: bytes) -> None:
        assert self.env is not None
        w = self.env.wrap
        if w is None or self.wrap is None:
            return
        if self.precomputed_wrap is not None:
            value = self.precomputed_wrap
        else:
            value = self.wrap.encrypt(key if w.key_text == "raw" else codec.encode(key, w.key_text).encode("ascii"))
        _put(w.carry, value, m.headers, m.params)

    def _unwrap_key(self, m: Message) -> bytes:
        assert self.env is not None and self.sym is not None
        w = self.env.wrap
        if w is not None and self.wrap is not None and self.wrap.private is not None:
            text = _get(w.carry, m.headers, m.params)
            if not text:
                raise KeyUnwrapError(f"message carries no wrapped key ({w.carry.name})")
            try:
                raw = self.wrap.decrypt(text)
                key = raw if w.key_text == "raw" else codec.decode(raw, w.key_text, what="unwrapped key")
            except (DecryptionError, MalformedInputError) as exc:
                raise KeyUnwrapError(
                    f"cannot unwrap the message key from {w.carry.name}: {exc} (sealed for another key pair, or altered)"
                ) from None
            if not self.sym.valid_key(key):
                raise KeyUnwrapError(f"unwrapped key from {w.carry.name} has the wrong size for {self.env.cipher}")
            return key
        if self.sym.fixed_key is not None:
            return self.sym.fixed_key
        raise KeyNotConfiguredError("cannot open: no private key to unwrap the message key, and no fixed key")

    # -- requests --------------------------------------------------------------------------

    def seal_request(
        self,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> Message:
        """Client side: stamp, encrypt, wrap the key, sign. Inputs are not modified."""
        m = Message(bytes(body), dict(headers or {}), dict(params or {}))
        ts = nonce = None
        if self.replay is not None:
            ar = self.profile.anti_replay
            assert ar is not None
            ts, nonce = self.replay.stamp(now)
            if ar.timestamp is None:
                ts = None
            else:
                _put(ar.timestamp, ts, m.headers, m.params)
            _put(ar.nonce, nonce, m.headers, m.params)
        plain = Message(m.body, m.headers, dict(m.params))
        if self.env is not None and self.sym is not None:
            key = self.sym.new_key()
            self._seal_payload(m, key)
            self._wrap_key(m, key)
            m.session = Session(key)
        main_sig = None
        if self.signer is not None:
            src = m if self.signer.spec.over == "ciphertext" else Message(plain.body, m.headers, plain.params)
            main_sig = self.signer.sign(src, ts, nonce)
            _put(self.signer.spec.carry, main_sig, m.headers, m.params)
        if self.replay_signer is not None:
            src = m if self.replay_signer.spec.over == "ciphertext" else Message(plain.body, m.headers, plain.params)
            _put(self.replay_signer.spec.carry, self.replay_signer.sign(src, ts, nonce, main_sig), m.headers, m.params)
        if self.steps:
            self._step("seal", m)
        return m

    def open_request(
        self,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        *,
        now: float | None = None,
    ) -> Message:
        """Platform side: check freshness, verify, unwrap, decrypt. Raises a specific CryptoError on any failure."""
        m = Message(bytes(body), dict(headers or {}), dict(params or {}))
        if self.steps:
            self._step("open", m)
        ts = nonce = None
        ar = self.profile.anti_replay
        if self.replay is not None and ar is not None:
            nonce = _get(ar.nonce, m.headers, m.params)
            if ar.timestamp is not None:
                ts = _get(ar.timestamp, m.headers, m.params)
                self.replay.check_timestamp(ts, now)
        sealed_view = Message(m.body, m.headers, dict(m.params))
        if self.signer is not None and self.signer.spec.over == "ciphertext":
            self.signer.verify(m, ts, nonce)
        if self.env is not None and self.sym is not None:
            key = self._unwrap_key(m)
            self._open_payload(m, key)
            m.session = Session(key)
        main_sig = _get(self.signer.spec.carry, m.headers, m.params) if self.signer else None
        if self.signer is not None and self.signer.spec.over == "plaintext":
            self.signer.verify(m, ts, nonce)
        if self.replay_signer is not None:
            src = sealed_view if self.replay_signer.spec.over == "ciphertext" else m
            self.replay_signer.verify(src, ts, nonce, main_sig)
        if self.replay is not None and ar is not None and ar.remember_nonces:
            # Only authenticated messages consume nonce memory.
            self.replay.check_nonce(nonce, now)
        return m

    # -- responses -------------------------------------------------------------------------

    def _response_key(self, session: Session | None) -> bytes:
        if session is not None:
            return session.key
        if self.sym is not None and self.sym.fixed_key is not None:
            return self.sym.fixed_key
        raise KeyNotConfiguredError("response crypto needs the request's session (its symmetric key)")

    def seal_response(self, body: bytes, headers: Mapping[str, str] | None = None, *, session: Session | None) -> Message:
        """Platform side: encrypt the response body with the request's key (when the profile says so)."""
        m = Message(bytes(body), dict(headers or {}))
        env = self.env
        if env is None or not env.response.encrypted or self._plain_response(m.body):
            return m
        key = self._response_key(session)
        ct, iv = self.sym.encrypt(key, m.body)  # type: ignore[union-attr]
        if iv is not None and self.sym.iv_carry is not None:  # type: ignore[union-attr]
            _put(self.sym.iv_carry, codec.encode(iv, env.payload.encoding), m.headers, m.params)  # type: ignore[union-attr]
        m.body = codec.encode(ct, env.payload.encoding).encode("ascii")
        return m

    def open_response(self, body: bytes, headers: Mapping[str, str] | None = None, *, session: Session | None) -> Message:
        """Client side: decrypt the response body with the request's key; plain responses pass through."""
        m = Message(bytes(body), dict(headers or {}))
        env = self.env
        if env is None or not env.response.encrypted or self._plain_response(m.body):
            return m
        key = self._response_key(session)
        carried = None
        if self.sym.iv_carry is not None:  # type: ignore[union-attr]
            t = _get(self.sym.iv_carry, m.headers, m.params)  # type: ignore[union-attr]
            carried = codec.decode(t, env.payload.encoding, what="IV") if t else None
        raw = codec.decode(m.body, env.payload.encoding, what="encrypted response")
        m.body = self.sym.decrypt(key, raw, carried)  # type: ignore[union-attr]
        return m

    def _plain_response(self, body: bytes) -> bool:
        assert self.env is not None
        head = body.lstrip()
        return any(head.startswith(p.encode("utf-8")) for p in self.env.response.plaintext_prefixes)

    # -- fields ----------------------------------------------------------------------------

    def _field(self, name: str) -> _PublicKeyCipher:
        if self.field_cipher is None or name not in self.encrypted_fields:
            raise CryptoConfigError(f"field {name!r} is not encrypted by this profile")
        return self.field_cipher

    def encrypt_field(self, name: str, value: str) -> str:
        """Encrypt one field value (e.g. idCardNo) as the profile says; returns wire text."""
        f = self.field_spec
        assert f is not None or name not in self.encrypted_fields
        return self._field(name).encrypt(value.encode(f.text_encoding if f else "utf-8"))

    def decrypt_field(self, name: str, value: str) -> str:
        f = self.field_spec
        raw = self._field(name).decrypt(value)
        try:
            return raw.decode(f.text_encoding if f else "utf-8")
        except UnicodeDecodeError:
            raise DecryptionError(f"field {name!r} decrypted to bytes that are not text") from None

    def encrypt_fields(self, obj: Any) -> Any:
        """Copy of a decoded JSON value with every configured field (any depth) encrypted; "" and null kept."""
        return self._walk(obj, self.encrypt_field)

    def decrypt_fields(self, obj: Any) -> Any:
        return self._walk(obj, self.decrypt_field)

    def _walk(self, obj: Any, fn: Callable[[str, str], str]) -> Any:
        if not self.encrypted_fields:
            return obj
        if isinstance(obj, dict):
            return {k: fn(k, v) if k in self.encrypted_fields and isinstance(v, str) and v else self._walk(v, fn) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v, fn) for v in obj]
        return obj


def _steps(profile: CryptoProfile) -> list[tuple[Any, Any]]:
    """The profile's `steps`, looked up in the extension registry, with their settings decoded."""
    if not profile.steps:
        return []
    from engine.plugins.registry import current
    from engine.plugins.spec import profile_settings, ref

    reg, out = current(), []
    for i, item in enumerate(profile.steps):
        got = ref(item)
        if got is None:
            raise CryptoConfigError(f"steps[{i}]: a step is a name or a one-key mapping {{name: settings}}")
        ext = reg.get("envelope_step", got[0])
        if ext is None:
            raise CryptoConfigError(f"steps[{i}]: {reg.missing('envelope_step', got[0])}")
        out.append((ext, profile_settings(ext, got[1], f"steps[{i}]")))
    return out


def compile_profile(
    profile: CryptoProfile,
    secrets: Mapping[str, str | bytes],
    *,
    role: Role = "client",
    nonce_store: NonceStore | None = None,
) -> CompiledProfile:
    """Compile a profile once: resolve and parse keys, check settings. Secrets map name -> value.

    `role` decides which keys are mandatory (a client needs public keys to seal, a platform or
    twin private keys to open); keys for the other role are loaded when supplied.
    """
    return CompiledProfile(profile, secrets, role, nonce_store)


def load_profile_yaml(text: str | bytes) -> CryptoProfile:
    """Decode a `crypto:` mapping from YAML (used for the example profiles and tests)."""
    import yaml

    data = yaml.safe_load(text)
    if isinstance(data, dict) and "crypto" in data:
        data = data["crypto"]
    try:
        return msgspec.convert(data, CryptoProfile)
    except msgspec.ValidationError as exc:
        raise CryptoConfigError(f"crypto profile: {exc}") from None


__all__ = ["CompiledProfile", "Message", "Role", "Session", "compile_profile", "load_profile_yaml"]

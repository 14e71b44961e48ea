"""The crypto profile: the `crypto:` section of a platform.yaml, as msgspec types.

Everything a platform's digital envelope, signature recipe, field encryption and
anti-replay rules need is a setting here; `compile_profile` (engine.crypto.envelope) turns
a profile plus the bridge's resolved secrets into sans-I/O seal/open functions. Keys are
never written in a spec: every key field is `{secret: NAME}`, a name the bridge
configuration maps to `env:VAR` or `file:PATH`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from engine.crypto.codec import TextEncoding
from engine.crypto.rsa import RsaPadding
from engine.crypto.signer import KeyPlacement, OutputEncoding, PairFormat, SortOrder
from engine.crypto.sm2.codec import CipherLayout, SignatureFormat

if TYPE_CHECKING:
    from engine.crypto.envelope import CompiledProfile, Role
    from engine.crypto.replay import NonceStore


class _S(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Base: unknown keys are errors, so a misspelt setting never passes silently."""


class SecretRef(_S, kw_only=True):
    """A key or secret by name, resolved from the bridge configuration (env:/file:), never inline."""

    secret: str
    """Name in the bridge configuration's `secrets:` mapping."""


class Carry(_S, kw_only=True):
    """Where a value travels in the message."""

    in_: Literal["header", "param"] = msgspec.field(name="in")
    """header: an HTTP header; param: a SOAP parameter, form field or top-level request parameter."""
    name: str
    """Header or parameter name, verbatim from the document (e.g. secretkey, strKey, sign, RAnonce)."""


class SM2Options(_S, kw_only=True):
    """SM2 wire conventions, all unspecified by the documents and so all settings."""

    layout: CipherLayout = "C1C3C2"
    """Ciphertext order: C1C3C2 (GB/T 32918.4), C1C2C3 (legacy, BouncyCastle default), or DER (GM/T 0009)."""
    prefix_04: bool = True
    """Raw layouts: C1 starts with the 04 point prefix. Decryption accepts both either way."""
    signature_format: SignatureFormat = "der"
    """Signatures as DER SEQUENCE{r,s} or raw 64-byte r||s."""


class SymmetricKey(_S, kw_only=True):
    """Where the envelope's symmetric key comes from."""

    source: Literal["random", "derived", "secret"] = "random"
    """random: fresh per message (classic envelope); derived: from a password; secret: a fixed configured key."""
    form: Literal["bytes", "alnum", "hex"] = "bytes"
    """random keys: raw CSPRNG bytes, or a CSPRNG string of letters and digits / hex digits used as ASCII bytes."""
    length: int = 16
    """random keys: bytes (form bytes) or characters (alnum, hex). SM4 needs 16; AES 16, 24 or 32."""
    password: SecretRef | None = None
    """derived: the password (e.g. a fixed gateway password)."""
    hash: Literal["sha256", "sm3", "sha1", "md5"] = "sha256"
    """derived: digest applied to the password."""
    digest_text: Literal["hex", "HEX", "base64"] = "hex"
    """derived: how the digest is written out before cutting (Java Sha256.encrypt returns lower hex)."""
    cut: int | None = 32
    """derived: keep the first `cut` characters (".substring(0, 32)"); None keeps all."""
    key_bytes: Literal["ascii", "hex"] = "ascii"
    """derived or secret: the text becomes key bytes as ASCII, or hex-decoded."""
    value: SecretRef | None = None
    """secret: the key text (turned into bytes per key_bytes)."""


class Iv(_S, kw_only=True):
    """The initialisation vector of CBC (or nonce of GCM)."""

    source: Literal["none", "fixed", "random"] = "none"
    """none for ECB; fixed text/hex (e.g. a 16-character ASCII string); or random per message."""
    text: str | None = None
    """fixed: the IV as ASCII text (exactly the block size)."""
    hex: str | None = None
    """fixed: the IV as hex."""
    carry: Carry | None = None
    """random: where the IV travels; omitted means it is prepended to the ciphertext."""


class KeyWrap(_S, kw_only=True):
    """How the symmetric key is wrapped for the recipient (the digital envelope's key part)."""

    algorithm: Literal["sm2", "rsa"]
    """sm2 (国密) or rsa ("RSA2": RSA-2048)."""
    public_key: SecretRef | None = None
    """Recipient's public key, used when sealing (the platform's key for requests)."""
    private_key: SecretRef | None = None
    """Recipient's private key, used when opening (only the platform side / a twin holds it)."""
    key_text: Literal["raw", "hex", "HEX", "base64"] = "raw"
    """What is wrapped: the raw key bytes, or their hex/base64 text (peers differ)."""
    sm2: SM2Options = msgspec.field(default_factory=SM2Options)
    rsa_padding: RsaPadding = "pkcs1v15"
    encoding: TextEncoding = "base64"
    """Text encoding of the wrapped key on the wire."""
    carry: Carry
    """Where the wrapped key travels (e.g. header secretkey, or SOAP param strKey)."""
    precomputed: SecretRef | None = None
    """A wrapped-key value issued out of band and sent verbatim (a provider-issued envelope key); skips wrapping."""


class Payload(_S, kw_only=True):
    """What the envelope encrypts."""

    target: Literal["body", "params"] = "body"
    """body: the whole message body; params: named string parameters (SOAP, form)."""
    params: list[str] = msgspec.field(default_factory=list)
    """target params: the parameter names to encrypt; those absent from a message are skipped."""
    encoding: TextEncoding = "base64"
    """Text encoding of the ciphertext on the wire."""
    text_encoding: str = "utf-8"
    """Charset of string parameters before encryption."""


class ResponseCrypto(_S, kw_only=True):
    """How responses are protected: with the request's symmetric key (both documented platforms)."""

    encrypted: bool = True
    plaintext_prefixes: list[str] = msgspec.field(default_factory=list)
    """Responses starting with one of these are plain (e.g. ok, error:)."""


class Envelope(_S, kw_only=True):
    """Digital envelope: a symmetric cipher for the payload, its key wrapped for the recipient."""

    cipher: Literal["sm4-ecb", "sm4-cbc", "aes-ecb", "aes-cbc", "aes-gcm"]
    """Payload cipher. ECB/CBC use PKCS#7 (checked on decrypt); GCM appends its 16-byte tag."""
    key: SymmetricKey = msgspec.field(default_factory=SymmetricKey)
    iv: Iv = msgspec.field(default_factory=Iv)
    wrap: KeyWrap | None = None
    """None: the key is never sent (both sides derive or hold it)."""
    payload: Payload = msgspec.field(default_factory=Payload)
    response: ResponseCrypto = msgspec.field(default_factory=ResponseCrypto)


class FieldCipher(_S, kw_only=True):
    """Public-key encryption of individual field values (e.g. an ID-card number)."""

    fields: list[str]
    """Field names, verbatim; matched at any depth of a JSON body by encrypt_fields/decrypt_fields."""
    algorithm: Literal["sm2", "rsa"] = "sm2"
    public_key: SecretRef | None = None
    """Used to encrypt (the platform-issued key)."""
    private_key: SecretRef | None = None
    """Used to decrypt (platform side / twin)."""
    sm2: SM2Options = msgspec.field(default_factory=SM2Options)
    rsa_padding: RsaPadding = "pkcs1v15"
    encoding: TextEncoding = "base64"
    text_encoding: str = "utf-8"


class SignInput(_S, kw_only=True):
    """One named value of the canonical string."""

    name: str
    """The name used in the canonical string (k=v pairs, sorting)."""
    from_: Literal["header", "param", "json", "body", "literal", "timestamp", "nonce", "signature"] = msgspec.field(name="from")
    """header / param / json (top-level field of a JSON body; non-strings as compact JSON) / body (the whole
    body text) / literal / timestamp, nonce (the anti-replay values) / signature (the main signature's value)."""
    key: str | None = None
    """Header, param or JSON field name when it differs from `name`."""
    value: str | None = None
    """literal: the value."""


class Signature(_S, kw_only=True):
    """A signature recipe: what is signed, how, and where the signature travels."""

    algorithm: str
    """md5/sha1/sha256/sm3 (keyed by concatenation), hmac-*, sm2 (SM3withSM2), rsa-sha256 (SHA256withRSA),
    or a signer a plugin registers (see `specbridge plugins`)."""
    settings: dict[str, Any] | None = None
    """A plugin signer's settings, checked against the schema it declares (built-in signers take none)."""
    inputs: list[SignInput] = msgspec.field(default_factory=list)
    """The values signed, in this order (before `sort`); empty means the raw body bytes."""
    canonical: str | None = None
    """The canonical-string recipe: `pairs` (the default: inputs per sort, pair, joiner, skip_empty) or a plugin's."""
    canonical_settings: dict[str, Any] | None = None
    """A plugin recipe's settings."""
    over: Literal["plaintext", "ciphertext"] = "plaintext"
    """With an envelope: body and params are read before (plaintext) or after (ciphertext) encryption."""
    sort: SortOrder = "none"
    pair: PairFormat = "value"
    joiner: str = ""
    skip_empty: bool = False
    text_encoding: str = "utf-8"
    key: SecretRef | None = None
    """Digest/HMAC algorithms: the shared secret (e.g. the key issued with an appid)."""
    key_placement: KeyPlacement = "append"
    """Digest algorithms: where the key goes in the string; hmac-* need `hmac`."""
    key_name: str = "key"
    """key_placement append_pair: the name in "&key=SECRET"."""
    private_key: SecretRef | None = None
    """sm2 / rsa-sha256: the signer's private key (used when sealing)."""
    public_key: SecretRef | None = None
    """sm2 / rsa-sha256: the signer's public key (used when opening)."""
    sm2: SM2Options = msgspec.field(default_factory=SM2Options)
    output: OutputEncoding = "base64"
    """Digest algorithms: hex, HEX (upper case) or base64. sm2/rsa: hex, HEX or base64 of the signature."""
    carry: Carry
    """Where the signature travels."""
    required: bool = True
    """Inbound: reject messages without a signature (else unsigned messages pass)."""


class AntiReplay(_S, kw_only=True):
    """Timestamp window and nonce memory (inbound), generation (outbound)."""

    timestamp: Carry | None = None
    """Where the timestamp travels; None for nonce-only schemes (e.g. a randomstr header)."""
    nonce: Carry
    remember_nonces: bool = True
    """Inbound: reject a nonce seen within the window. False: generate only (the document promises no check)."""
    unit: Literal["ms", "s"] = "ms"
    """Epoch milliseconds or seconds."""
    window_s: int = 900
    """Maximum age of a timestamp."""
    future_skew_s: int = 300
    """Maximum clock skew into the future."""
    nonce_format: Literal["uuid", "uuid-hex", "hex32", "hex16"] = "uuid"
    max_nonces: int = 1_000_000
    """Size cap of the in-memory nonce store."""
    signature: Signature | None = None
    """A signature over the anti-replay values (e.g. RAsignature), computed after the main one."""


class CryptoProfile(_S, kw_only=True):
    """A platform's crypto settings (platform.yaml `crypto:`). All parts are optional and independent."""

    sm2_backend: Literal["auto", "libcrypto", "gmssl"] = "auto"
    """SM2 implementation: auto (libcrypto when usable), or forced."""
    signer_id: str = "1234567812345678"
    """SM2 distinguishing ID for Z_A (GB/T 35276 default)."""
    envelope: Envelope | None = None
    fields: FieldCipher | None = None
    signature: Signature | None = None
    anti_replay: AntiReplay | None = None
    steps: list[str | dict[str, dict[str, Any] | None]] | None = None
    """Envelope steps plugins register, by name or `{name: {settings}}`: run after the built-in parts when
    sealing a request, before them (in reverse order) when opening one."""
    verified: bool = False
    """True once the recipe is confirmed against the real platform (a vendor sample, a live test)."""
    note: str | None = None
    """Why the settings are what they are; the document's gaps."""


def compile_profile(
    profile: CryptoProfile,
    secrets: Mapping[str, str | bytes],
    *,
    role: Role = "client",
    nonce_store: NonceStore | None = None,
) -> CompiledProfile:
    """Compile once at load time; see engine.crypto.envelope.compile_profile."""
    from engine.crypto.envelope import compile_profile as _compile

    return _compile(profile, secrets, role=role, nonce_store=nonce_store)

"""Digest signers over a configurable canonical string.

Chinese platform documents describe signatures as "concatenate these fields, append the
key, hash, upper-case" with every detail varying (and one platform document lost
its recipe entirely), so every detail is a setting: which fields, sort order, pair format,
joiner, where the key goes, hash or HMAC, output encoding and letter case, text encoding.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from engine.crypto import codec
from engine.crypto.errors import BadSignatureError, CryptoConfigError, MissingSignatureError
from engine.crypto.sm3 import hmac_sm3, sm3

DigestAlgorithm = Literal["md5", "sha1", "sha256", "sm3", "hmac-md5", "hmac-sha1", "hmac-sha256", "hmac-sm3"]
KeyPlacement = Literal["none", "append", "prepend", "both", "append_pair", "hmac"]
SortOrder = Literal["none", "name"]
PairFormat = Literal["value", "name=value", "namevalue"]
OutputEncoding = Literal["hex", "HEX", "base64"]

_HASHES = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}


def digest(algorithm: str, data: bytes, key: bytes | None = None) -> bytes:
    """Hash (md5/sha1/sha256/sm3) or HMAC (hmac-*) of `data`."""
    if algorithm.startswith("hmac-"):
        name = algorithm[5:]
        if key is None:
            raise CryptoConfigError(f"{algorithm} needs a key")
        if name == "sm3":
            return hmac_sm3(key, data)
        if name in _HASHES:
            return hmac.new(key, data, name).digest()
    elif algorithm == "sm3":
        return sm3(data)
    elif algorithm in _HASHES:
        return _HASHES[algorithm](data).digest()
    raise CryptoConfigError(f"unknown digest algorithm {algorithm!r}")


@dataclass(frozen=True, slots=True)
class Canonicalizer:
    """Builds the byte string that gets signed from named values."""

    fields: tuple[str, ...] | None = None
    """Names to include, in this order; None = every value given."""
    sort: SortOrder = "none"
    """"name": sort pairs by name (byte order, case-sensitive), after selecting `fields`."""
    pair: PairFormat = "value"
    joiner: str = ""
    skip_empty: bool = False
    """Drop pairs whose value is empty (common in "sorted k=v" recipes)."""
    text_encoding: str = "utf-8"

    def pairs(self, values: Mapping[str, str]) -> list[tuple[str, str]]:
        names = list(values) if self.fields is None else list(self.fields)
        items = [(n, values.get(n, "")) for n in names]
        if self.skip_empty:
            items = [(n, v) for n, v in items if v != ""]
        if self.sort == "name":
            items.sort(key=lambda p: p[0].encode(self.text_encoding))
        return items

    def join(self, values: Mapping[str, str], extra: list[str] | None = None, prefix: list[str] | None = None) -> bytes:
        fmt = {"value": "{v}", "name=value": "{n}={v}", "namevalue": "{n}{v}"}[self.pair]
        parts = [fmt.format(n=n, v=v) for n, v in self.pairs(values)]
        parts = (prefix or []) + parts + (extra or [])
        return self.joiner.join(parts).encode(self.text_encoding)


@dataclass(frozen=True, slots=True)
class DigestSigner:
    """sign = encode(HASH(canonical string with the key placed per `key_placement`)), or an HMAC."""

    canonical: Canonicalizer
    algorithm: DigestAlgorithm = "md5"
    key_placement: KeyPlacement = "append"
    key_name: str = "key"
    """Name used when key_placement is append_pair ("...&key=SECRET")."""
    output: OutputEncoding = "HEX"

    def __post_init__(self) -> None:
        is_hmac = self.algorithm.startswith("hmac-")
        if is_hmac != (self.key_placement == "hmac"):
            raise CryptoConfigError("hmac-* algorithms need key_placement: hmac, and only they may use it")

    def _material(self, values: Mapping[str, str], key: str | None) -> tuple[bytes, bytes | None]:
        c = self.canonical
        if self.key_placement in ("none", "hmac"):
            data = c.join(values)
        elif key is None:
            raise CryptoConfigError("signer needs a key but none is configured")
        elif self.key_placement == "append":
            data = c.join(values, extra=[key])
        elif self.key_placement == "prepend":
            data = c.join(values, prefix=[key])
        elif self.key_placement == "both":
            data = c.join(values, prefix=[key], extra=[key])
        else:  # append_pair
            data = c.join(values, extra=[f"{self.key_name}={key}"])
        hkey = key.encode(c.text_encoding) if self.key_placement == "hmac" and key is not None else None
        return data, hkey

    def sign(self, values: Mapping[str, str], key: str | None = None) -> str:
        data, hkey = self._material(values, key)
        return codec.encode(digest(self.algorithm, data, hkey), self.output)

    def verify(self, values: Mapping[str, str], signature: str | None, key: str | None = None) -> None:
        """Raise BadSignatureError unless `signature` matches. Hex comparison ignores case."""
        if not signature:
            raise MissingSignatureError("message carries no signature")
        expected = self.sign(values, key)
        if self.output in ("hex", "HEX"):
            ok = hmac.compare_digest(expected.lower().encode(), signature.strip().lower().encode())
        else:
            ok = hmac.compare_digest(expected.encode(), signature.strip().encode())
        if not ok:
            raise BadSignatureError(f"{self.algorithm} signature does not match (altered fields, or another key)")

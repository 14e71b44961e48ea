"""The engine's own extensions, registered through the same API as any plugin, as plugin `specbridge`.

Built-in field types are validated by the engine's walker and fast path (their FieldType objects
describe them); built-in signers and the `pairs` canonical recipe take their options from the
`crypto.signature` keys themselves (algorithm, inputs, sort, pair, joiner, key_placement, output...),
so their `settings` are empty and the engine passes them a SignOptions instead.
"""

from __future__ import annotations

import csv
import hmac as _hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from engine.plugins.registry import Plugin
from engine.plugins.seams import FieldType, Signer
from engine.spec import checks

if TYPE_CHECKING:
    from engine.crypto.profile import Signature


# -- field types ------------------------------------------------------------------------------
class BuiltinType(FieldType):
    """A type the engine validates itself (walker and msgspec fast path); documented in docs/spec-language.md."""

    def __init__(self, base: type, doc: str, schema: dict[str, Any]) -> None:
        self.base = base  # type: ignore[misc]
        self.__doc__ = doc
        self._schema = schema

    def json_schema(self, settings: Any) -> dict[str, Any]:
        return dict(self._schema)


_TYPES: dict[str, tuple[type, str, dict[str, Any]]] = {
    "string": (str, "Text; `length` counts characters, or bytes in `encoding` with `length_unit: bytes`.", {"type": "string"}),
    "int": (int, "A whole number (JSON number; digits in XML, forms and headers).", {"type": "integer"}),
    "number": (float, "Any number.", {"type": "number"}),
    "decimal": (float, "A number; `decimal(p,s)` limits its digits (p in all, s after the point).", {"type": "number"}),
    "date": (str, "A date as text in `format` (default yyyy-MM-dd), checked against the calendar.", {"type": "string"}),
    "datetime": (str, "A date and time as text in `format` (default yyyy-MM-dd HH:mm:ss).", {"type": "string"}),
    "time": (str, "A time of day as text in `format` (default HH:mm:ss).", {"type": "string"}),
    "bool": (bool, "true/false (also 0/1 and true/false text in XML, forms and headers).", {"type": "boolean"}),
    "object": (str, "An object with `fields` (or `use: group`).", {"type": "object"}),
    "list": (str, "A list: of objects (`fields`) or of scalars (`items`), `card` items.", {"type": "array"}),
    "binary": (str, "Bytes as text: `format` base64 (default) or hex; `max_bytes` limits the decoded size.", {"type": "string"}),
    "file": (str, "A multipart file part; `max_bytes` and `media_types` limit it.", {"type": "string", "format": "binary"}),
    "any": (str, "Anything; not validated.", {}),
}


# -- signers ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SignOptions:
    """What a built-in signer reads: the recipe's own keys, the SM2 distinguishing ID and backend."""

    signature: Signature
    uid: bytes = b"1234567812345678"
    backend: Callable[[], Any] | None = None
    where: str = "signature"
    """Where the recipe is in the profile, for error messages (`signature`, `anti_replay.signature`)."""


class DigestSigning(Signer):
    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        keyed = "an HMAC (`key_placement: hmac`) keyed with `key`" if algorithm.startswith("hmac-") else (
            "a hash of the canonical string with `key` placed per `key_placement` (append, prepend, both, append_pair, none)")
        self.__doc__ = f"{algorithm.upper()}: {keyed}; written per `output` (hex, HEX, base64)."

    def sign(self, data: bytes, key: Any, settings: Any) -> str:
        from engine.crypto import codec
        from engine.crypto.errors import CryptoConfigError
        from engine.crypto.signer import digest

        s: Signature = settings.signature
        enc = s.text_encoding
        if self.algorithm.startswith("hmac-"):
            return codec.encode(digest(self.algorithm, data, None if key is None else str(key).encode(enc)), s.output)  # type: ignore[arg-type]
        if s.key_placement != "none" and key is None:
            raise CryptoConfigError("signer needs a key but none is configured")
        k, j = (str(key).encode(enc) if key is not None else b""), s.joiner.encode(enc)
        material = {
            "none": data,
            "append": data + j + k,
            "prepend": k + j + data,
            "both": k + j + data + j + k,
            "append_pair": data + j + f"{s.key_name}=".encode(enc) + k,
        }[s.key_placement]
        return codec.encode(digest(self.algorithm, material), s.output)  # type: ignore[arg-type]

    def verify(self, data: bytes, signature: str, key: Any, settings: Any) -> bool:
        want, got = self.sign(data, key, settings), signature.strip()
        if settings.signature.output in ("hex", "HEX"):
            want, got = want.lower(), got.lower()
        return _hmac.compare_digest(want.encode(), got.encode())


class Sm2Signing(Signer):
    """SM3withSM2 over the canonical string (`private_key` signs, `public_key` verifies); `sm2.signature_format`
    der or raw r||s, written per `output`; the profile's `signer_id` is the distinguishing ID."""

    def load_key(self, raw: str | bytes, *, private: bool, settings: Any) -> Any:
        from engine.crypto.keys import load_sm2_private_key, load_sm2_public_key

        return load_sm2_private_key(raw) if private else load_sm2_public_key(raw)

    def sign(self, data: bytes, key: Any, settings: Any) -> str:
        from engine.crypto import codec
        from engine.crypto.sm2 import sm2_sign

        s: Signature = settings.signature
        sig = sm2_sign(key, data, uid=settings.uid, fmt=s.sm2.signature_format, backend=settings.backend())
        return codec.encode(sig, s.output)  # type: ignore[arg-type]

    def verify(self, data: bytes, signature: str, key: Any, settings: Any) -> bool:
        from engine.crypto import codec
        from engine.crypto.sm2 import sm2_verify

        s: Signature = settings.signature
        raw = codec.decode(signature, s.output, what=f"{settings.where} signature")  # type: ignore[arg-type]
        sm2_verify(key, data, raw, uid=settings.uid, fmt=s.sm2.signature_format, backend=settings.backend())
        return True


class RsaSha256Signing(Signer):
    """SHA256withRSA (PKCS#1 v1.5) over the canonical string, written per `output`."""

    def load_key(self, raw: str | bytes, *, private: bool, settings: Any) -> Any:
        from engine.crypto import rsa

        return rsa.load_rsa_private_key(raw) if private else rsa.load_rsa_public_key(raw)

    def sign(self, data: bytes, key: Any, settings: Any) -> str:
        from engine.crypto import codec, rsa

        return codec.encode(rsa.rsa_sign_sha256(key, data), settings.signature.output)

    def verify(self, data: bytes, signature: str, key: Any, settings: Any) -> bool:
        from engine.crypto import codec, rsa

        rsa.rsa_verify_sha256(key, data, codec.decode(signature, settings.signature.output, what=f"{settings.where} signature"))
        return True


DIGESTS = ("md5", "sha1", "sha256", "sm3", "hmac-md5", "hmac-sha1", "hmac-sha256", "hmac-sm3")


def pairs(values: Mapping[str, str], body: bytes, settings: Any) -> bytes:
    """The named inputs (`inputs`) as `pair` (value, name=value, namevalue), optionally sorted by name
    (`sort`) and without empty values (`skip_empty`), joined by `joiner`; no inputs: the raw body."""
    from engine.crypto.signer import Canonicalizer

    s: Signature = settings.signature
    if not s.inputs:
        return body
    canon = Canonicalizer(fields=tuple(i.name for i in s.inputs), sort=s.sort, pair=s.pair, joiner=s.joiner,
                          skip_empty=s.skip_empty, text_encoding=s.text_encoding)
    return canon.join(values)


# -- code tables ------------------------------------------------------------------------------
class CsvTable(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Settings of the `csv` code-table provider."""

    file: str
    """The table file, relative to the code-table YAML file."""
    delimiter: str = ","
    """Column separator (`"\\t"` for TSV)."""
    code: int = 0
    """Column of the code (0-based)."""
    label: int = 1
    """Column of the label."""
    header: bool = False
    """Skip the first row."""
    encoding: Literal["utf-8", "utf-8-sig", "gb18030", "gbk"] = "utf-8"


def csv_table(settings: CsvTable, directory: Path) -> dict[str, str]:
    """Codes and labels from a CSV/TSV file next to the code-table file (national tables such as GB/T 2260
    region codes are published as spreadsheets, too long to copy into YAML)."""
    out: dict[str, str] = {}
    with (directory / settings.file).open(encoding=settings.encoding, newline="") as fh:
        rows = csv.reader(fh, delimiter=settings.delimiter)
        for i, row in enumerate(rows):
            if (i == 0 and settings.header) or not row or not row[settings.code].strip():
                continue
            out[row[settings.code].strip()] = row[settings.label].strip() if len(row) > settings.label else ""
    return out


# -- registration ------------------------------------------------------------------------------
def register(plugin: Plugin) -> None:
    for name, (base, doc, schema) in _TYPES.items():
        plugin.field_type(name, BuiltinType(base, doc, schema))
    plugin.check("id_card", checks.id_card, sensitive=True)
    plugin.check("mobile", checks.mobile)
    for alg in DIGESTS:
        plugin.signer(alg, DigestSigning(alg))
    plugin.signer("sm2", Sm2Signing())
    plugin.signer("rsa-sha256", RsaSha256Signing())
    plugin.canonical("pairs", pairs)
    plugin.code_table("csv", csv_table, settings=CsvTable)
    from engine.plugins.transports import register_transports

    register_transports(plugin)

"""Secret references and redaction.

Specs name secrets (`{secret: platform_sm2_pub}`); the bridge configuration maps each name to
a reference, `env:NAME` or `file:PATH`, resolved here. Values never appear in specs, reprs,
logs or error messages: `Redactor` scrubs any that leak into text anyway.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from engine.crypto.errors import SecretError

SecretValue = str | bytes


def resolve_secret(ref: str, *, base_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> SecretValue:
    """Resolve `env:NAME` or `file:PATH` (relative to base_dir). Files are returned as text when UTF-8."""
    env = os.environ if environ is None else environ
    scheme, sep, target = ref.partition(":")
    if not sep or not target:
        raise SecretError("secret reference must be env:NAME or file:PATH")
    if scheme == "env":
        if target not in env:
            raise SecretError(f"environment variable {target} is not set")
        return env[target]
    if scheme == "file":
        path = Path(target).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            return data
    raise SecretError(f"unknown secret scheme {scheme!r} (use env: or file:)")


def resolve_secrets(
    refs: Mapping[str, str], *, base_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, SecretValue]:
    """Resolve a bridge configuration's `secrets:` mapping (name -> reference) into values."""
    return {name: resolve_secret(ref, base_dir=base_dir, environ=environ) for name, ref in refs.items()}


class Redactor:
    """Replaces known secret values (and their common encodings) in text with [REDACTED:name]."""

    MIN_LEN = 4

    def __init__(self, secrets: Mapping[str, SecretValue] | None = None) -> None:
        self._needles: list[tuple[str, str]] = []
        if secrets:
            self.add_all(secrets.items())

    def add(self, name: str, value: SecretValue) -> None:
        texts = {value} if isinstance(value, str) else {value.hex(), value.hex().upper()}
        if isinstance(value, str):
            # PEM bodies: redact each base64 line too, in case one is logged on its own.
            texts.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 16)
        for t in texts:
            if len(t) >= self.MIN_LEN:
                self._needles.append((t, name))
        self._needles.sort(key=lambda p: -len(p[0]))

    def add_all(self, items: Iterable[tuple[str, SecretValue]]) -> None:
        for name, value in items:
            self.add(name, value)

    def __call__(self, text: str) -> str:
        for needle, name in self._needles:
            if needle in text:
                text = text.replace(needle, f"[REDACTED:{name}]")
        return text

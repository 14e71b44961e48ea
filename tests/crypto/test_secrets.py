"""Secret references resolve from env: and file:, and values are redacted from text."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.crypto.errors import SecretError
from engine.crypto.keys import generate_sm2_private_key
from engine.crypto.secrets import Redactor, resolve_secret, resolve_secrets


def test_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("PEMTEXT\n")
    (tmp_path / "k.bin").write_bytes(b"\xff\x00\x01")
    got = resolve_secrets({"a": "env:SB_TEST_A", "b": "file:k.pem", "c": "file:k.bin"}, base_dir=tmp_path, environ={"SB_TEST_A": "va"})
    assert got == {"a": "va", "b": "PEMTEXT", "c": b"\xff\x00\x01"}


def test_errors_name_the_reference_not_a_value(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="SB_MISSING"):
        resolve_secret("env:SB_MISSING", environ={})
    with pytest.raises(SecretError, match="cannot read"):
        resolve_secret("file:nope", base_dir=tmp_path)
    with pytest.raises(SecretError, match="env:NAME or file:PATH"):
        resolve_secret("just-a-literal-value")


def test_redactor() -> None:
    k = generate_sm2_private_key()
    r = Redactor({"app_key": "s3cr3t-app-key", "pem": k.to_pem(), "raw": k.scalar_bytes()})
    line = k.to_pem().splitlines()[1]
    text = f"sign failed for s3cr3t-app-key with {line} and {k.to_hex()}"
    out = r(text)
    assert "s3cr3t-app-key" not in out and line not in out and k.to_hex() not in out
    assert "[REDACTED:app_key]" in out

"""SM2 backend selection: automatic, overridable by profile, process setting or environment."""

from __future__ import annotations

import pytest

from engine.crypto import sm2
from engine.crypto.errors import BackendUnavailableError, CryptoConfigError


def test_auto_prefers_libcrypto() -> None:
    assert sm2.available_backends()["libcrypto"] is None, "the fast backend must work on this host"
    assert sm2.get_backend().name == "libcrypto"
    assert sm2.get_backend("auto").name == "libcrypto"


def test_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sm2.ENV_BACKEND, "gmssl")
    assert sm2.get_backend().name == "gmssl"
    assert sm2.get_backend("auto").name == "gmssl"  # a profile's "auto" yields to the operator
    assert sm2.get_backend("libcrypto").name == "libcrypto"  # an explicit choice wins
    sm2.set_default_backend("libcrypto")
    try:
        assert sm2.get_backend().name == "libcrypto"
    finally:
        sm2.set_default_backend(None)
    with pytest.raises(CryptoConfigError):
        sm2.get_backend("openssl-magic")


def test_falls_back_to_gmssl_when_libcrypto_is_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sm2.ENV_BACKEND, raising=False)
    monkeypatch.setattr(sm2, "_instances", {k: v for k, v in sm2._instances.items() if k != "libcrypto"})
    monkeypatch.setattr(sm2, "_failures", {"libcrypto": "simulated: OpenSSL without SM2"})
    assert sm2.get_backend().name == "gmssl"
    assert sm2.available_backends()["libcrypto"] == "simulated: OpenSSL without SM2"
    with pytest.raises(BackendUnavailableError, match="simulated"):
        sm2.get_backend("libcrypto")

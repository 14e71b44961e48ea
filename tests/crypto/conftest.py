"""Shared fixtures: SM2 backends (every one must be usable here) and the openssl CLI as a real peer.

Nothing is skipped: a host whose openssl lacks SM2, or whose libcrypto cannot run the fast
backend, fails these tests loudly (the project setup installs Debian's `openssl`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.crypto.sm2 import BACKEND_NAMES, SM2Backend, available_backends, get_backend


@pytest.fixture(scope="session", params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> SM2Backend:
    reasons = available_backends()
    if reasons[request.param] is not None:
        pytest.fail(f"SM2 backend {request.param} unusable on this host: {reasons[request.param]}")
    return get_backend(request.param)


@pytest.fixture(scope="session")
def both_backends() -> tuple[SM2Backend, SM2Backend]:
    reasons = available_backends()
    bad = {k: v for k, v in reasons.items() if v is not None}
    if bad:
        pytest.fail(f"SM2 backends unusable: {bad}")
    return get_backend("libcrypto"), get_backend("gmssl")


OpenSSL = Callable[..., bytes]


@pytest.fixture(scope="session")
def openssl() -> OpenSSL:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("the openssl command is required (Debian/Ubuntu package: openssl)")
    algos = subprocess.run([exe, "list", "-public-key-algorithms"], capture_output=True, text=True, check=True).stdout
    if "SM2" not in algos:
        pytest.fail("this openssl has no SM2 support; the interop tests need OpenSSL 3 with SM2 enabled")

    def run(*args: str | Path, stdin: bytes | None = None) -> bytes:
        proc = subprocess.run([exe, *map(str, args)], input=stdin, capture_output=True)
        if proc.returncode != 0:
            raise AssertionError(f"openssl {' '.join(map(str, args))} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    return run

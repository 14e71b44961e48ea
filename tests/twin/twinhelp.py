"""Helpers for the twin tests: a client-side crypto profile for a running twin, example bodies."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from engine.crypto.envelope import CompiledProfile
from engine.crypto.profile import compile_profile
from engine.spec import SpecSet
from engine.twin import RunningTwin

ROOT = Path(__file__).resolve().parents[2]


def client(running: RunningTwin) -> CompiledProfile:
    """The bridge's side of the twin's crypto: the platform's profile with the twin's public keys."""
    profile = running.twin.crypto.profile if running.twin.crypto is not None else None
    assert profile is not None, "this twin runs without crypto"
    return compile_profile(profile, running.twin.client_secrets, role="client")


def example(specs: SpecSet, qualified: str, index: int = 0, *, part: str = "request", valid: bool = True) -> Any:
    """A copy of the index-th example body of an interface (request, valid by default): YAML anchors
    share objects between examples, so a test must never change the spec's own."""
    exs = [e for e in specs.interface(qualified).spec.examples or () if e.part == part and e.valid == valid]
    return copy.deepcopy(exs[index].body)

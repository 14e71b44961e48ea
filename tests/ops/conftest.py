"""Operator tests reuse the bridge tests' real specs, mappings and twins on loopback."""

from tests.bridge.conftest import mappings, specset, twins  # noqa: F401

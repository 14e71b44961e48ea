"""The bridge tests' twins and the real specs, for the runtime tests."""

from tests.bridge.conftest import mappings, specset, twins

__all__ = ["mappings", "specset", "twins"]

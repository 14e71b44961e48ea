"""Scaffolds: `specbridge new platform ID` writes a platform spec that passes `check` and runs as a twin."""

from engine.scaffold.platform import TRANSPORTS, ScaffoldError, new_platform

__all__ = ["TRANSPORTS", "ScaffoldError", "new_platform"]

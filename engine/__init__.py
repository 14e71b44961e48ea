"""specbridge engine: spec language, compiler, crypto, journal, runtime and CLI (no socket code)."""

__version__ = "0.1.0"

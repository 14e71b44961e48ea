"""Translators: declarative field maps between source records, canonical models and platform
messages (issue 6). Load once with `load_mappings`; call `Translator.translate(record)` per record.
"""

from engine.translate.errors import NoRoute, TranslateError, UnmappedCode
from engine.translate.lint import lint_mappings
from engine.translate.loader import Chain, MappingSet, load_mappings
from engine.translate.translator import Endpoint, Translator

__all__ = [
    "Chain",
    "Endpoint",
    "MappingSet",
    "NoRoute",
    "TranslateError",
    "Translator",
    "UnmappedCode",
    "lint_mappings",
    "load_mappings",
]

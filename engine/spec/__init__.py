"""The spec language: model (schema), loader, resolver, compiler (validators) and lint."""

from engine.spec.compiled import CompiledInterface, CompiledModel, Result
from engine.spec.loader import PlatformSpec, SpecSet, load_specs
from engine.spec.validate import Issue

__all__ = ["CompiledInterface", "CompiledModel", "Issue", "PlatformSpec", "Result", "SpecSet", "load_specs"]

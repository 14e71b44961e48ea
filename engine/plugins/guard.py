"""Calling an extension: a plugin's exception or wrong return type becomes an ExtensionError naming it.

Built-ins are called directly (their own errors are the engine's). A plugin's SpecbridgeError is
deliberate (a BadSignatureError from verify, say) and passes through as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import SpecbridgeError
from engine.plugins.errors import ExtensionError
from engine.plugins.errors import describe as reason
from engine.plugins.registry import Extension

_NAMES = {type(None): "None", str: "str", bytes: "bytes", bool: "bool", int: "int", float: "float", dict: "a mapping"}


def _expected(allowed: tuple[type, ...]) -> str:
    return " or ".join(_NAMES.get(t, t.__name__) for t in allowed)


def call(ext: Extension, fn: Callable[..., Any], *args: Any, returns: type | tuple[type, ...], what: str,
         error: type[ExtensionError] = ExtensionError) -> Any:
    """`fn(*args)`, checked: raises `error` naming ext's plugin when it raises or returns another type."""
    if ext.builtin:
        return fn(*args)
    try:
        result = fn(*args)
    except SpecbridgeError:
        raise
    except Exception as exc:
        raise error(f"{ext.label} raised {reason(exc)} in {what}", plugin=ext.plugin, kind=ext.kind, name=ext.name) from None
    allowed = returns if isinstance(returns, tuple) else (returns,)
    ok = isinstance(result, allowed) and not (type(result) is bool and bool not in allowed)  # True is an int, not an answer
    if not ok:
        raise error(f"{ext.label} returned {type(result).__name__} from {what}, expected {_expected(allowed)}",
                    plugin=ext.plugin, kind=ext.kind, name=ext.name)
    return result

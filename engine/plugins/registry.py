"""The extension registry: built-ins first, then every `specbridge.plugins` entry point.

One table maps (kind, name) to an Extension. A plugin registers into a staging list that is
committed only when its register() returns, so a plugin that fails half-way adds nothing; its
failure is kept (name, entry point, exception message) for `specbridge plugins` and `check`.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import msgspec

from engine.plugins.errors import PluginError, describe
from engine.plugins.seams import KIND_TITLES, KINDS, EnvelopeStep, FieldType, NoSettings, Signer, Transport

GROUP = "specbridge.plugins"
BUILTIN = "specbridge"
"""The plugin name the engine's own extensions are registered under."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_BASES = (str, int, float, bool)


def _normal(name: str) -> str:
    """PEP 503 normalisation, so `specbridge_sample` and `Specbridge-Sample` name one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _origin(obj: Any) -> str:
    """`module:qualname` of the function or class that implements an extension."""
    target = obj if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)) else type(obj)
    module = getattr(target, "__module__", None) or "?"
    return f"{module}:{getattr(target, '__qualname__', repr(target))}"


def _doc(obj: Any) -> str:
    """The implementation's own docstring (an instance's, set per instance by the built-ins, or its class's)."""
    doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


@dataclass(frozen=True, slots=True)
class Extension:
    """One named extension: what it is, what implements it, its settings schema and where it came from."""

    kind: str
    name: str
    impl: Any
    settings: type[msgspec.Struct]
    plugin: str
    doc: str = ""
    origin: str = ""
    """`module:qualname` of the implementation."""
    sensitive: bool = False

    @property
    def builtin(self) -> bool:
        return self.plugin == BUILTIN

    @property
    def title(self) -> str:
        return f"{KIND_TITLES[self.kind]} `{self.name}`"

    @property
    def label(self) -> str:
        """How findings and errors name it: plugin `acme` signer `x`."""
        return f"plugin `{self.plugin}` {KIND_TITLES[self.kind]} `{self.name}`"

    def source_file(self) -> str | None:
        mod = sys.modules.get(self.origin.partition(":")[0])
        return getattr(mod, "__file__", None)


@dataclass(eq=False)
class PluginInfo:
    """One plugin: an entry point (or the built-ins), its distribution, what it registered or why it failed."""

    name: str
    entry_point: str
    dist: str | None = None
    version: str | None = None
    extensions: list[Extension] = field(default_factory=list)
    error: str | None = None
    """Why it failed to load (`ModuleNotFoundError: No module named 'x'`); None when it loaded."""

    @property
    def builtin(self) -> bool:
        return self.name == BUILTIN

    def describe(self) -> str:
        dist = f"{self.dist} {self.version}" if self.dist else "no distribution"
        return f"`{self.name}` ({dist}, entry point {self.entry_point})"


def _settings_type(settings: Any, what: str) -> type[msgspec.Struct]:
    if not (isinstance(settings, type) and issubclass(settings, msgspec.Struct)):
        raise PluginError(f"{what}: settings must be a msgspec.Struct class, got {settings!r}")
    if not settings.__struct_config__.forbid_unknown_fields:
        raise PluginError(f"{what}: settings {settings.__name__} must be declared with forbid_unknown_fields=True")
    return settings


class Plugin:
    """What a plugin's register function receives: one method per kind of extension.

    Function kinds can be used as decorators: `@plugin.check("luhn", settings=LuhnSettings)`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.staged: list[Extension] = []

    def _add(self, kind: str, name: str, impl: Any, settings: Any, doc: str | None, sensitive: bool = False) -> Extension:
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"{KIND_TITLES[kind]} name {name!r}: use letters, digits, `_`, `.` and `-`, starting with a letter")
        what = f"{KIND_TITLES[kind]} `{name}`"
        if any(e.kind == kind and e.name == name for e in self.staged):
            raise PluginError(f"{what} is registered twice")
        ext = Extension(kind, name, impl, _settings_type(settings, what), self.name, (doc or _doc(impl)).strip(), _origin(impl), sensitive)
        self.staged.append(ext)
        return ext

    @staticmethod
    def _instance(impl: Any, base: type, what: str) -> Any:
        if isinstance(impl, type) and issubclass(impl, base):
            impl = impl()
        if not isinstance(impl, base):
            raise PluginError(f"{what}: expected a {base.__module__}.{base.__name__} (subclass instance), got {type(impl).__name__}")
        return impl

    def _function(self, kind: str, name: str, fn: Any, settings: Any, doc: str | None, sensitive: bool = False) -> Any:
        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(f):
                raise PluginError(f"{KIND_TITLES[kind]} `{name}`: expected a function, got {type(f).__name__}")
            self._add(kind, name, f, settings, doc, sensitive)
            return f

        return add if fn is None else add(fn)

    # -- one method per kind -----------------------------------------------------------------
    def field_type(self, name: str, impl: FieldType | type[FieldType]) -> Extension:
        """A type for `type: NAME`; see engine.plugins.seams.FieldType."""
        impl = self._instance(impl, FieldType, f"field type `{name}`")
        if impl.base not in _BASES:
            raise PluginError(f"field type `{name}`: base must be one of str, int, float, bool, not {impl.base!r}")
        return self._add("field_type", name, impl, impl.settings, None, bool(impl.sensitive))

    def check(self, name: str, fn: Callable[[str, Any], str | None] | None = None, *, settings: type[msgspec.Struct] = NoSettings,
              sensitive: bool = False, doc: str | None = None) -> Any:
        """A value check for `checks: [NAME]`: fn(value: str, settings) -> reason or None."""
        return self._function("check", name, fn, settings, doc, sensitive)

    def signer(self, name: str, impl: Signer | type[Signer]) -> Extension:
        """A signature algorithm for `crypto.signature.algorithm: NAME`; see seams.Signer."""
        impl = self._instance(impl, Signer, f"signer `{name}`")
        return self._add("signer", name, impl, impl.settings, None)

    def canonical(self, name: str, fn: Callable[..., bytes] | None = None, *, settings: type[msgspec.Struct] = NoSettings,
                  doc: str | None = None) -> Any:
        """A canonical-string recipe for `crypto.signature.canonical: NAME`: fn(values, body, settings) -> bytes."""
        return self._function("canonical", name, fn, settings, doc)

    def envelope_step(self, name: str, impl: EnvelopeStep | type[EnvelopeStep]) -> Extension:
        """A step for `crypto.steps: [NAME]`; see seams.EnvelopeStep."""
        impl = self._instance(impl, EnvelopeStep, f"envelope step `{name}`")
        return self._add("envelope_step", name, impl, impl.settings, None)

    def code_table(self, name: str, fn: Callable[..., Any] | None = None, *, settings: type[msgspec.Struct] = NoSettings,
                   doc: str | None = None) -> Any:
        """A code-table provider for a code-table file's `provider: NAME`: fn(settings, directory) -> {code: label}."""
        return self._function("code_table", name, fn, settings, doc)

    def transport(self, name: str, impl: Transport | type[Transport]) -> Extension:
        """A transport for a bridge source's `adapter: NAME` or a target's `transport: NAME`; see seams.Transport."""
        impl = self._instance(impl, Transport, f"transport `{name}`")
        if not (impl.has_inbound or impl.has_outbound):
            raise PluginError(f"transport `{name}` implements neither inbound nor outbound")
        return self._add("transport", name, impl, impl.settings, None)


class Registry:
    """Every extension by (kind, name), every plugin with what it registered, and what went wrong."""

    def __init__(self) -> None:
        self.plugins: list[PluginInfo] = []
        self.problems: list[str] = []
        """Conflicts: a name registered by two plugins (the first one keeps it)."""
        self._ext: dict[tuple[str, str], Extension] = {}

    # -- building ---------------------------------------------------------------------------
    def load(self, name: str, register: Callable[[Plugin], Any] | types.ModuleType, *, entry_point: str = "",
             dist: str | None = None, version: str | None = None) -> PluginInfo:
        """Run one plugin's register function; a failure is recorded, never raised."""
        info = PluginInfo(name, entry_point or _origin(register), dist, version)
        self.plugins.append(info)
        plugin = Plugin(name)
        try:
            fn = register
            if isinstance(fn, types.ModuleType):
                fn = getattr(fn, "register", None)
                if not callable(fn):
                    raise PluginError(f"module {register.__name__} has no register(plugin) function")
            if not callable(fn):
                raise PluginError(f"entry point is a {type(fn).__name__}, not a module or a function")
            fn(plugin)
        except Exception as exc:
            info.error = describe(exc)
            return info
        for ext in plugin.staged:
            key = (ext.kind, ext.name)
            if key in self._ext:
                first = self._ext[key].plugin
                self.problems.append(f"plugin `{name}` registers {ext.title}, already provided by plugin `{first}`; ignored")
                continue
            self._ext[key] = ext
            info.extensions.append(ext)
        return info

    def load_entry_point(self, ep: metadata.EntryPoint) -> PluginInfo:
        dist = getattr(ep, "dist", None)
        dname = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        try:
            obj = ep.load()
        except Exception as exc:  # an import error, or anything the plugin's module raises on import
            info = PluginInfo(ep.name, ep.value, dname, version, error=describe(exc))
            self.plugins.append(info)
            return info
        return self.load(ep.name, obj, entry_point=ep.value, dist=dname, version=version)

    @classmethod
    def discover(cls, entry_points: Iterable[metadata.EntryPoint] | None = None) -> Registry:
        """The built-ins, then the installed plugins (entry points on sys.path), in name order."""
        from engine import __version__
        from engine.plugins import builtin

        reg = cls()
        reg.load(BUILTIN, builtin.register, entry_point="engine.plugins.builtin:register", dist="specbridge", version=__version__)
        eps = metadata.entry_points(group=GROUP) if entry_points is None else entry_points
        seen: set[tuple[str, str]] = set()
        for ep in sorted(eps, key=lambda e: (e.name, e.value)):
            if (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            if ep.name == BUILTIN:
                reg.plugins.append(PluginInfo(ep.name, ep.value, error=f"PluginError: the name `{BUILTIN}` is reserved for the built-ins"))
                continue
            reg.load_entry_point(ep)
        return reg

    # -- reading ----------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Extension | None:
        return self._ext.get((kind, name))

    def names(self, kind: str) -> list[str]:
        return sorted(n for k, n in self._ext if k == kind)

    def extensions(self, kind: str | None = None) -> list[Extension]:
        order = {k: i for i, k in enumerate(KINDS)}
        return sorted((e for e in self._ext.values() if kind is None or e.kind == kind), key=lambda e: (order[e.kind], e.name))

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error is not None]

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name), None)

    def installed(self, name: str) -> PluginInfo | None:
        """The plugin whose entry-point name or distribution name is `name` (normalised), loaded or not."""
        want = _normal(name)
        return next((p for p in self.plugins if _normal(p.name) == want or (p.dist and _normal(p.dist) == want)), None)

    def missing(self, kind: str, name: str, needs: Sequence[str] = ()) -> str:
        """Why `name` is not a known extension of `kind`, naming the plugins that could provide it."""
        title = KIND_TITLES[kind]
        hints: list[str] = []
        other = [e for (k, n), e in self._ext.items() if n == name and k != kind]
        hints += [f"`{name}` is a {KIND_TITLES[e.kind]} (plugin `{e.plugin}`), not a {title}" for e in other]
        for need in needs:
            got = self.installed(need)
            if got is None:
                hints.append(f"this platform needs plugin `{need}` (platform.yaml `plugins`), which is not installed")
            elif got.error is not None:
                hints.append(f"this platform needs plugin `{need}`, which failed to load: {got.error}")
        if not hints:
            known = ", ".join(self.names(kind)) or "none"
            hints.append(f"no installed plugin provides it (known {title}s: {known})")
        needed = {_normal(n) for n in needs}
        broken = [p for p in self.failures if not ({_normal(p.name), _normal(p.dist or "")} & needed)]
        if broken:
            hints.append("plugins that failed to load and may provide it: " + ", ".join(f"`{p.name}` ({p.error})" for p in broken))
        return f"unknown {title} `{name}`: " + "; ".join(hints)


_current: Registry | None = None


def current() -> Registry:
    """The process's registry, discovered on first use."""
    global _current
    if _current is None:
        _current = Registry.discover()
    return _current


def reset() -> None:
    """Forget the registry: the next use discovers again (after sys.path changed, in tests)."""
    global _current
    _current = None


@contextlib.contextmanager
def using(reg: Registry) -> Iterator[Registry]:
    """Make `reg` the process's registry for a block (tests)."""
    global _current
    saved, _current = _current, reg
    try:
        yield reg
    finally:
        _current = saved

"""Load a specs/ tree: decode every file, resolve references, compile, lint, run examples.

`load_specs` is what every other part of specbridge starts from. It collects all findings
before deciding, so `specbridge check` shows every problem in one run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import Finding, SpecError, UnknownInterface
from engine.plugins.registry import current as current_registry
from engine.plugins.spec import lint_crypto, provide_codes
from engine.spec.compiled import CompiledBody, CompiledInterface, CompiledModel
from engine.spec.decode import SpecFile, decode_file
from engine.spec.model import Body, CodeTable, Group, Interface, Platform
from engine.spec.resolve import Resolver

KINDS = ("platforms", "sources")


@dataclass(eq=False)
class PlatformSpec:
    id: str
    kind: str
    dir: Path
    platform: Platform
    file: SpecFile
    interfaces: dict[str, CompiledInterface] = field(default_factory=dict)
    interface_files: dict[str, SpecFile] = field(default_factory=dict)
    groups: dict[str, tuple[Group, SpecFile]] = field(default_factory=dict)
    codes: dict[str, tuple[CodeTable, SpecFile]] = field(default_factory=dict)
    extensions: set[tuple[str, str]] = field(default_factory=set)
    """(kind, name) of every extension this platform's specs name, installed or not (see engine.plugins)."""
    missing: set[tuple[str, str]] = field(default_factory=set)
    """Those no installed plugin provides (each is an error finding; its examples are not run)."""


@dataclass(eq=False)
class SpecSet:
    root: Path
    platforms: dict[str, PlatformSpec] = field(default_factory=dict)
    models: dict[str, CompiledModel] = field(default_factory=dict)
    model_specs: dict[str, tuple[Group, SpecFile]] = field(default_factory=dict)
    common_groups: dict[str, tuple[Group, SpecFile]] = field(default_factory=dict)
    common_codes: dict[str, tuple[CodeTable, SpecFile]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def interface(self, qualified: str) -> CompiledInterface:
        pid, _, iid = qualified.partition("/")
        plat = self.platforms.get(pid)
        if plat is None:
            raise UnknownInterface(f"unknown platform `{pid}` (known: {', '.join(sorted(self.platforms)) or 'none'})")
        iface = plat.interfaces.get(iid)
        if iface is None:
            raise UnknownInterface(f"unknown interface `{qualified}` (known: {', '.join(sorted(plat.interfaces))})")
        return iface

    def model(self, model_id: str) -> CompiledModel:
        got = self.models.get(model_id)
        if got is None:
            raise UnknownInterface(f"unknown canonical model `{model_id}` (known: {', '.join(sorted(self.models))})")
        return got

    def interfaces(self) -> Iterator[CompiledInterface]:
        for plat in self.platforms.values():
            yield from plat.interfaces.values()


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root.parent if root.name == "specs" else root
        self.set = SpecSet(root)
        self.findings = self.set.findings
        self.registry = current_registry()

    def decode(self, path: Path, tp: type[Any]) -> tuple[Any, SpecFile | None]:
        spec, sf, findings = decode_file(path, _rel(path, self.base), tp)
        self.findings.extend(findings)
        return spec, sf

    def _dir(self, d: Path, tp: type[Any], what: str) -> dict[str, tuple[Any, SpecFile]]:
        out: dict[str, tuple[Any, SpecFile]] = {}
        if not d.is_dir():
            return out
        for p in sorted(d.iterdir()):
            if p.is_dir() or p.suffix not in (".yaml", ".yml"):
                continue
            spec, sf = self.decode(p, tp)
            if spec is None or sf is None:
                continue
            sid = getattr(spec, "id", None) or p.stem
            if getattr(spec, "id", None) and spec.id != p.stem:
                self.findings.append(sf.finding(("id",), f"{what} id `{spec.id}` differs from its file name `{p.stem}`"))
            if sid in out:
                self.findings.append(sf.finding(("id",), f"duplicate {what} id `{sid}` (also in {out[sid][1].rel})"))
                continue
            out[sid] = (spec, sf)
        return out

    def codes(self, d: Path, needs: Sequence[str] = (), used: set[tuple[str, str]] | None = None) -> dict[str, tuple[CodeTable, SpecFile]]:
        tables = self._dir(d, CodeTable, "code table")
        for tid, (table, sf) in tables.items():
            if table.provider is not None:
                table, found = provide_codes(table, sf, self.registry, needs)
                self.findings.extend(found)
                tables[tid] = (table, sf)
                if used is not None:
                    used.add(("code_table", table.provider))
                if found:
                    continue
            if not table.values:
                self.findings.append(sf.finding(("values",), f"code table `{tid}` is empty"))
        return tables

    def load(self) -> SpecSet:
        for info in self.registry.failures:
            msg = f"failed to load: {info.error} ({info.describe()}); the other plugins are loaded"
            self.findings.append(Finding(f"<plugin {info.name}>", 0, msg, "warn"))
        for problem in self.registry.problems:
            self.findings.append(Finding("<plugins>", 0, problem, "warn"))
        common = self.root / "common"
        self.set.common_groups = self._dir(common / "groups", Group, "group")
        self.set.common_codes = self.codes(common / "codes")
        self._models()
        for kind in KINDS:
            kdir = self.root / kind
            if not kdir.is_dir():
                continue
            for pdir in sorted(p for p in kdir.iterdir() if p.is_dir()):
                self._platform(pdir, kind)
        return self.set

    def _resolver(
        self, groups: dict[str, tuple[Group, SpecFile]], codes: dict[str, tuple[CodeTable, SpecFile]], platform: Platform | None
    ) -> Resolver:
        cg, cc = self.set.common_groups, self.set.common_codes
        return Resolver(
            lambda g: groups.get(g) or cg.get(g),
            lambda c: codes.get(c) or cc.get(c),
            platform.defaults if platform else None,
            (platform.extra if platform and platform.extra else "forbid"),
            needs=(platform.plugins or ()) if platform else (),
        )

    def _models(self) -> None:
        models = self._dir(self.root / "canonical", Group, "model")
        # A model may embed another model (`patient: {use: patient}`): models resolve before common groups.
        res = self._resolver(models, {}, None)
        for mid, (group, sf) in models.items():
            self.set.model_specs[mid] = (group, sf)
            node = res.group_node(group, sf)
            body = Body(fields=group.fields, one_of=group.one_of)
            self.set.models[mid] = CompiledModel(mid, sf.rel, CompiledBody(body, node))
        self.findings.extend(res.findings)

    def _platform(self, pdir: Path, kind: str) -> None:
        pfile = pdir / "platform.yaml"
        if not pfile.exists():
            self.findings.append(Finding(_rel(pdir, self.base), 1, "platform directory without platform.yaml"))
            return
        platform, psf = self.decode(pfile, Platform)
        if platform is None or psf is None:
            return
        if platform.id != pdir.name:
            self.findings.append(psf.finding(("id",), f"platform id `{platform.id}` differs from its directory `{pdir.name}`"))
        ps = PlatformSpec(platform.id, kind, pdir, platform, psf)
        ps.groups = self._dir(pdir / "groups", Group, "group")
        ps.codes = self.codes(pdir / "codes", platform.plugins or (), ps.extensions)
        found, used = lint_crypto(platform.crypto, psf, self.registry, platform.plugins or ())
        self.findings.extend(found)
        ps.extensions |= used
        for stray in sorted(pdir.iterdir()):
            if stray.name not in ("platform.yaml", "interfaces", "groups", "codes", "examples", "README.md", "docs", "tests"):
                self.findings.append(Finding(_rel(stray, self.base), 1, f"unexpected `{stray.name}` in a platform directory", "warn"))
        res = self._resolver(ps.groups, ps.codes, platform)
        max_bytes = platform.transport.max_request_bytes
        hdr = rhdr = None
        if platform.transport.headers is not None:
            hb = msgspec.structs.replace(platform.transport.headers, format="form")
            hdr = CompiledBody(hb, res.body(hb, psf, ("transport", "headers")))
        if platform.transport.response_headers is not None:
            hb = msgspec.structs.replace(platform.transport.response_headers, format="form")
            rhdr = CompiledBody(hb, res.body(hb, psf, ("transport", "response_headers")))
        for iid, (iface, sf) in self._dir(pdir / "interfaces", Interface, "interface").items():
            ps.interface_files[iid] = sf
            limit = (iface.limits or {}).get("max_request_bytes", max_bytes)
            req = CompiledBody(iface.request, res.body(iface.request, sf, ("request",)), limit) if iface.request else None
            rsp = CompiledBody(iface.response, res.body(iface.response, sf, ("response",))) if iface.response else None
            ihdr, irhdr = hdr, rhdr
            if iface.headers is not None:
                hb = msgspec.structs.replace(iface.headers, format="form")
                ihdr = CompiledBody(hb, res.body(hb, sf, ("headers",)))
            if iface.response_headers is not None:
                hb = msgspec.structs.replace(iface.response_headers, format="form")
                irhdr = CompiledBody(hb, res.body(hb, sf, ("response_headers",)))
            fixed = iface.binding.http.headers if iface.binding and iface.binding.http and iface.binding.http.headers else None
            if fixed and ihdr is not None:
                for name in fixed:
                    if name not in (ihdr.node.children or {}):
                        self.findings.append(sf.finding(("binding", "http", "headers", name),
                                                        f"fixed header `{name}` is not a header field of this platform"))
            ps.interfaces[iid] = CompiledInterface(platform.id, iface, platform, sf.rel, req, rsp, ihdr, irhdr, fixed)
        self.findings.extend(res.findings)
        ps.extensions |= res.used
        ps.missing = {(k, n) for k, n in ps.extensions if self.registry.get(k, n) is None}
        if platform.id in self.set.platforms:
            self.findings.append(psf.finding(("id",), f"duplicate platform id `{platform.id}`"))
            return
        self.set.platforms[platform.id] = ps


def load_specs(root: str | Path = "specs", *, strict: bool = True, lint: bool = True) -> SpecSet:
    """Load and compile a specs tree. With strict, any error finding raises SpecError."""
    from engine.spec.lint import lint_set

    specset = _Loader(Path(root)).load()
    if lint:
        lint_set(specset)
    if strict and specset.errors:
        raise SpecError(specset.errors)
    return specset

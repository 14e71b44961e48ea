"""Hot reload: a changed bridge file or spec is checked, then swapped into the running bridge.

The watcher polls the bridge file and every YAML file under the specs directory (modification
time, size and inode: cheap for a few hundred files, no dependency, and it works where inotify is
silent, such as bind mounts and ConfigMap volumes). It reloads once a change has stayed still for
one interval, so a half-saved file is not read. SIGHUP, or `reload()`, forces a reload.

A reload checks what `specbridge check` and `specbridge run` check. Any error finding, or a bridge
that cannot be built (a secret file gone, a source that cannot start), refuses the new
configuration: the running one is kept, the reason is logged at ERROR with its file:line, and
`runtime.reload_failures` / `runtime.last_reload_error` say so. A clean one is swapped in by
`BridgeRuntime.swap` (nothing journalled or in flight is dropped); the sources whose settings or
spec changed are restarted (a view poller finishes its row in hand and keeps its cursor file).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from engine.bridge.model import Bridge, Source
from engine.errors import SpecError
from engine.runtime.bridge import BridgeRuntime, platform_digest
from engine.runtime.config import check_bridge, load_bridge
from engine.runtime.serve import start_sources
from engine.spec import load_specs
from engine.spec.loader import SpecSet
from engine.translate import MappingSet, load_mappings

log = logging.getLogger("specbridge.reload")

SHOWN = 5
"""Findings quoted in the refusal line (the count says how many more there are)."""

Snapshot = dict[str, tuple[int, int, int]]


@dataclass(frozen=True, slots=True)
class Config:
    bridge: Bridge
    specset: SpecSet
    mappings: MappingSet


def load_checked(bridge_path: Path, specs_dir: Path) -> Config:
    """Load the specs, mappings and bridge file as `specbridge run` does, collecting every error
    finding before deciding; raises SpecError with them."""
    specset = load_specs(specs_dir, strict=False)
    mappings = load_mappings(specs_dir / "mappings", specset, strict=False)
    errors = [*specset.errors, *mappings.errors]
    if errors:
        raise SpecError(errors)
    bridge = load_bridge(bridge_path)
    errors = [f for f in check_bridge(bridge, specset, str(bridge_path), mappings) if f.severity == "error"]
    if errors:
        raise SpecError(errors)
    return Config(bridge, specset, mappings)


def snapshot(bridge_path: Path, specs_dir: Path) -> Snapshot:
    """(mtime, size, inode) of the bridge file and every spec file: the loaders read only YAML, and
    editors' hidden swap files are not specs. An inode catches a rename over a file of equal size."""
    out: Snapshot = {}
    paths = [str(bridge_path)]
    for root, dirs, files in os.walk(specs_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths += [os.path.join(root, f) for f in sorted(files) if f.endswith((".yaml", ".yml")) and not f.startswith(".")]
    for p in paths:
        with contextlib.suppress(OSError):  # gone between the listing and the stat: absent is a change too
            st = os.stat(p)
            out[p] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return out


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def _digests(items: dict[str, Any], extra: Callable[[Any], str] = lambda _: "") -> dict[str, str]:
    return {k: hashlib.sha256(msgspec.json.encode(v) + extra(v).encode()).hexdigest() for k, v in items.items()}


def _diff(before: dict[str, str], after: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) names."""
    return (sorted(after.keys() - before.keys()), sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
            sorted(before.keys() - after.keys()))


def _source_digests(sources: dict[str, Source], specset: SpecSet) -> dict[str, str]:
    """A source changes with its settings or with the spec it reads (its platform's digest)."""
    return _digests(sources, lambda s: platform_digest(specset, s.spec.partition("/")[0]) if s.spec else "")


def _mapping_specs(ms: MappingSet) -> dict[str, Any]:
    return {**{f"codes/{k}": v[0] for k, v in ms.code_maps.items()}, **{k: v[0] for k, v in ms.mappings.items()}}


def _say(what: str, names: list[str]) -> str:
    return f"{what} {', '.join(names)}" if names else ""


def _files(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


class Reloader:
    """Watches a running bridge's files and swaps in each checked change (see the module docstring).

    `sources` is the running sources by name (serve's `Running.sources`): changed in place, so
    whoever stops the bridge stops the sources that run now. `interval_s` None: no watching, only
    SIGHUP and `reload()`. `announce`, if given, also gets each reload's summary line and the new
    port of a restarted source (for a status display; `specbridge run` has the log)."""

    def __init__(self, runtime: BridgeRuntime, bridge_path: Path, specs_dir: Path, sources: dict[str, Any], *,
                 interval_s: float | None = 1.0, announce: Callable[[str], None] | None = None) -> None:
        self.runtime = runtime
        self.bridge_path = bridge_path
        self.specs_dir = specs_dir
        self.sources = sources
        self.interval_s = None if interval_s is None else max(0.05, interval_s)
        self.announce = announce
        self._seen: Snapshot = {}
        self._forced = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._seen = await asyncio.to_thread(snapshot, self.bridge_path, self.specs_dir)
        self._task = asyncio.create_task(self._watch(), name="reload-watch")

    async def stop(self) -> None:
        """Let a reload under way finish (a half-applied one would leave sources stopped), then end."""
        if self._task is None:
            return
        async with self._lock:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def request(self) -> None:
        """Reload now (the SIGHUP handler): checked like any change, refused the same way."""
        self._forced.set()

    async def _watch(self) -> None:
        pending: Snapshot | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._forced.wait(), self.interval_s)
            try:
                if self._forced.is_set():
                    self._forced.clear()
                    await self.reload("SIGHUP")
                    continue
                snap = await asyncio.to_thread(snapshot, self.bridge_path, self.specs_dir)
                if snap == self._seen:
                    pending = None
                elif snap != pending:
                    pending = snap  # still being written, perhaps: take it once it stays the same for an interval
                else:
                    pending = None
                    await self.reload("changed: " + _files(changed_files(self._seen, snap)))
            except Exception:  # a bug here must not end the watching
                log.exception("reload watcher")

    async def reload(self, why: str = "requested") -> bool:
        """Check the files and swap them in; False (and the reason logged) when refused."""
        async with self._lock:
            rt = self.runtime
            self._seen = await asyncio.to_thread(snapshot, self.bridge_path, self.specs_dir)
            try:
                new = await asyncio.to_thread(load_checked, self.bridge_path, self.specs_dir)
                summary = await self._apply(new)
            except SpecError as exc:
                return self._refused(why, [str(f) for f in exc.findings])
            except Exception as exc:  # a secret file gone, a port taken...: a reload never takes the bridge down
                return self._refused(why, [f"{type(exc).__name__}: {exc}"])
            rt.reloads += 1
            rt.last_reload_error = None
            line = f"reloaded bridge {new.bridge.id} ({why}): {summary}"
            log.info("%s", line)
            if self.announce is not None:
                self.announce(line)
            return True

    def _refused(self, why: str, reasons: list[str]) -> bool:
        rt = self.runtime
        more = f" (and {len(reasons) - SHOWN} more)" if len(reasons) > SHOWN else ""
        rt.reload_failures += 1
        rt.last_reload_error = "; ".join(reasons[:SHOWN]) + more
        log.error("reload refused (%s), bridge %s keeps its running configuration: %d error(s): %s",
                  why, rt.bridge.id, len(reasons), rt.last_reload_error)
        return False

    async def _apply(self, new: Config) -> str:
        """Stop the sources that change, swap the runtime, start the changed and added sources. If a
        source cannot start, everything goes back to the old configuration and the reload is refused."""
        rt = self.runtime
        old = Config(rt.bridge, rt.specset, rt.mappings)
        s_added, s_changed, s_removed = _diff(_source_digests(old.bridge.sources, old.specset),
                                              _source_digests(new.bridge.sources, new.specset))
        r_added, r_changed, r_removed = _diff(*(_digests({r.id: r for r in c.bridge.routes}) for c in (old, new)))
        p_added, p_changed, p_removed = _diff(*({p: platform_digest(c.specset, p) for p in c.specset.platforms} for c in (old, new)))
        m_added, m_changed, m_removed = _diff(*(_digests(_mapping_specs(c.mappings)) for c in (old, new)))
        await self._stop_sources([*s_changed, *s_removed])
        try:
            targets = rt.swap(new.bridge, new.specset, new.mappings)
        except BaseException:
            await self._start_sources([*s_changed, *s_removed])  # nothing was swapped: put them back
            raise
        try:
            await self._start_sources([*s_changed, *s_added])
        except BaseException:
            try:
                await self._stop_sources([*s_changed, *s_added])
                rt.swap(old.bridge, old.specset, old.mappings)
                await self._start_sources([*s_changed, *s_removed])
            except Exception as exc:  # the refusal reports the first failure; this one must not hide it
                log.error("putting the previous configuration back failed: %s: %s", type(exc).__name__, exc)
            raise
        if msgspec.json.encode(old.bridge.admin) != msgspec.json.encode(new.bridge.admin):
            log.warning("bridge %s: admin settings changed; they take effect at the next restart", new.bridge.id)
        kept = targets["tokens_kept"]
        parts = [
            _say("targets added", targets["added"]),
            _say("targets changed", targets["changed"]) + (f" (token kept: {', '.join(kept)})" if kept else ""),
            _say("targets removed", targets["removed"]),
            _say("routes added", r_added), _say("routes changed", r_changed), _say("routes removed", r_removed),
            _say("sources added", s_added), _say("sources restarted", s_changed), _say("sources removed", s_removed),
            _say("platform specs added", p_added), _say("platform specs changed", p_changed), _say("platform specs removed", p_removed),
            _say("mappings added", m_added), _say("mappings changed", m_changed), _say("mappings removed", m_removed),
        ]
        return "; ".join(p for p in parts if p) or "no effective change"

    async def _stop_sources(self, names: list[str]) -> None:
        for name in names:
            src = self.sources.pop(name, None)
            if src is not None:
                try:
                    await src.stop()
                except Exception as exc:
                    log.warning("source %s did not stop cleanly: %s: %s", name, type(exc).__name__, exc)

    async def _start_sources(self, names: list[str]) -> None:
        """One at a time, so a failure leaves `sources` naming exactly those that run."""
        for name in names:
            if name in self.runtime.bridge.sources:
                self.sources.update(await start_sources(self.runtime, self.runtime.base_dir, only=[name]))
                port = getattr(self.sources.get(name), "port", None)
                if port:  # a source on port 0 gets a new one: say where it listens now
                    log.info("source %s on 127.0.0.1:%d", name, port)
                    if self.announce is not None:
                        self.announce(f"source {name}: {self.runtime.bridge.sources[name].adapter} on 127.0.0.1:{port}")

"""The plugin packages under tests/, installed for real (pip, no index, no downloads) into directories
of their own: on PYTHONPATH (subprocesses) or sys.path (in-process) a plugin is installed, without
it it is not. Entry points are found from the dist-info pip writes, as for any installed plugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import plugins

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
FIXTURES = HERE / "fixtures"


def pip_install(package: str, work: Path) -> Path:
    """`pip install --target` one package of tests/plugins, from a copy (pip builds in place)."""
    src = work / "src" / package
    shutil.copytree(HERE / package, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = work / package
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--target", str(site), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site


@pytest.fixture(scope="session")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_install("sample_plugin", tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="session")
def bad_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_install("bad_plugin", tmp_path_factory.mktemp("bad"))


def env_with(*sites: Path) -> dict[str, str]:
    """The environment of a `specbridge` subprocess with these plugin sites installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, sites), str(ROOT)])}


def cli(*args: str, sites: tuple[Path, ...] = (), cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, env=env_with(*sites), input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _installed(monkeypatch: pytest.MonkeyPatch, *sites: Path) -> Iterator[plugins.Registry]:
    for site in sites:
        monkeypatch.syspath_prepend(str(site))
    plugins.reset()
    try:
        yield plugins.current()
    finally:
        plugins.reset()  # before monkeypatch takes the sites off sys.path: the next user rediscovers without them


@pytest.fixture
def with_sample(monkeypatch: pytest.MonkeyPatch, sample_site: Path) -> Iterator[plugins.Registry]:
    """The sample plugin installed in this process (the registry rediscovered)."""
    yield from _installed(monkeypatch, sample_site)


@pytest.fixture
def with_both(monkeypatch: pytest.MonkeyPatch, sample_site: Path, bad_site: Path) -> Iterator[plugins.Registry]:
    """The sample plugin and the misbehaving one installed in this process."""
    yield from _installed(monkeypatch, sample_site, bad_site)


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """A copy of the fixture specs tree (sample_province), free to edit."""
    dst = tmp_path / "specs"
    shutil.copytree(FIXTURES / "specs", dst)
    return dst


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing `needle` (tests name lines without hard-coding them)."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in {path}")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")

"""The committed docs/platforms pages are what `specbridge docs` generates from today's specs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_committed_docs_match_the_specs(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    cmd = [sys.executable, "-m", "engine.cli", "docs", "-o", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    committed = ROOT / "docs" / "platforms"
    fresh = {p.relative_to(out): p.read_text(encoding="utf-8") for p in out.rglob("*.md")}
    have = {p.relative_to(committed): p.read_text(encoding="utf-8") for p in committed.rglob("*.md")}
    stale = sorted(str(k) for k in fresh if have.get(k) != fresh[k]) + sorted(str(k) for k in have if k not in fresh)
    assert not stale, f"docs/platforms is stale; run `specbridge docs -o docs/platforms`: {stale[:10]}"

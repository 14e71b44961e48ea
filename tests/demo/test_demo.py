"""The README's main job, as a user runs it: `specbridge demo` in a subprocess, on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
INTERFACES = [
    "xinjiang_mr/ArchiveAutoReport.lab", "xinjiang_mr/ArchiveAutoReport.exam", "jilin_imaging/savePatientExam",
    "jilin_imaging/uploadDicom", "pe_system/lis_pubReport", "pe_system/pacs_pubReport", "city_lab_mr/HR01",
    "wedoctor_supervision/A2000", "wedoctor_supervision/A2001",
]


def test_demo_delivers_every_record_to_every_platform(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "demo", "--out", str(out), "--timeout", "120"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    for iface in INTERFACES:
        row = next(ln for ln in lines if ln.strip().startswith(iface + " "))
        assert row.rstrip().endswith("ok"), row
    assert "every record reached every platform it routes to" in proc.stdout
    assert (out / "journal.db").exists()
    listing = subprocess.run([sys.executable, "-m", "engine.cli", "messages", "--journal", str(out / "journal.db"),
                              "--state", "DEAD"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "0 message(s)" in listing.stderr

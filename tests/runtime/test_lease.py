"""journal.lease_s: how long a claimed message is held before a crash's leftovers come back in doubt.
`specbridge check` wants it at least twice every target's timeout, and the runtime claims with it."""

from __future__ import annotations

from pathlib import Path

from engine.bridge.model import Bridge, JournalConfig, Route, RouteTarget, Source, Target
from engine.journal import Incoming
from engine.runtime.bridge import BridgeRuntime
from engine.runtime.config import check_bridge


def bridge_with(tmp: Path, lease_s: float, timeout_s: float) -> Bridge:
    return Bridge(id="b", journal=JournalConfig(path=str(tmp / "j.db"), lease_s=lease_s),
                  sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report", settings={"database": "x.db"})},
                  targets={"jilin": Target(platform="jilin_imaging", base_url="http://127.0.0.1:9", timeout_s=timeout_s)},
                  routes=[Route(id="r", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam")])])


def test_check_wants_the_lease_to_outlast_twice_each_targets_timeout(specset, mappings, tmp_path: Path) -> None:
    assert check_bridge(bridge_with(tmp_path, 60, 30), specset, "bridge.yaml", mappings) == []  # the defaults
    [f] = check_bridge(bridge_with(tmp_path, 20, 15), specset, "bridge.yaml", mappings)
    assert f.file == "bridge.yaml" and f.severity == "error" and f.message == (
        "journal.lease_s 20 is shorter than twice target `jilin`'s timeout_s 15: a slow send could be claimed and sent"
        " again while it is under way")


async def test_the_runtime_claims_with_the_configured_lease(specset, mappings, tmp_path: Path) -> None:
    rt = BridgeRuntime(bridge_with(tmp_path, 12, 5), specset, mappings, base_dir=tmp_path)
    j = await rt.open_journal()
    try:
        assert j.lease_s == 12
        _, m = await j.receive_claimed(Incoming("jilin_imaging/savePatientExam", "jilin", b"{}", "K", "r", b"{}"))
        assert m is not None and m.next_attempt_at is not None
        assert abs(m.next_attempt_at - (m.created_at + 12)) < 1e-6
    finally:
        await j.close()

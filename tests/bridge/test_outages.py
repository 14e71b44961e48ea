"""A target down for a while, and a platform that refuses a message until the deployment is fixed."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

from engine.bridge.model import RetryConfig, Route, RouteTarget, Source
from engine.crypto.keys import generate_sm2_private_key
from engine.journal import State
from engine.twin.serve import serve_twin
from tests.bridge.conftest import CREDENTIALS, ROOT, example, make_bridge, runtime_for
from tests.bridge.test_e2e import wait_done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(specset, n: int) -> list[dict]:
    base = example(specset, "hospital_pacs/exam_report")
    return [{**base, "REPORT_ID": f"R{i}", "ACCESSION_NO": f"A{i}"} for i in range(n)]


async def test_down_target_waits_with_growing_delays_then_drains(twins, specset, mappings, tmp_path: Path) -> None:
    port = free_port()
    probe = await twins.start("jilin_imaging")  # only for its client secrets (keys) and target settings
    target = twins.target("jilin_imaging", retry=RetryConfig(base_s=0.05, factor=2, max_delay_s=5, max_attempts=50))
    target.base_url = f"http://127.0.0.1:{port}"
    bridge = make_bridge(twins, tmp_path, sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
                         routes=[Route(id="r", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam")])],
                         targets={"jilin": target})
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        ids = [i for r in _records(specset, 3) for i in await rt.receive("pacs", r)]
        await asyncio.sleep(1.5)  # the platform is down: attempts fail and back off
        m = await rt.journal.get(ids[0])
        assert m is not None and m.state is State.ERROR and m.attempts >= 3
        gaps = [b.started_at - a.started_at for a, b in zip(m.history, m.history[1:], strict=False)]
        # growing delays: equal jitter puts the pause after failed attempt n at no less than base*2^(n-1)/2,
        # and a loaded machine only adds to a pause, so lower bounds hold however busy the test host is
        floors = [0.05 * 2**i / 2 for i in range(len(gaps))]
        assert all(g >= f - 0.002 for g, f in zip(gaps, floors, strict=True)), (gaps, floors)
        assert all(a.outcome == "retry" for a in m.history)
        # the platform comes back on the same address, with the same keys
        up = await serve_twin(specset, "jilin_imaging", port=port, credentials=CREDENTIALS["jilin_imaging"],
                              secrets=probe.twin.secrets)
        try:
            counts = await wait_done(rt, 3)
            assert counts == {"SENT": 3}
            assert sum(up.stats()["deliveries"]["savePatientExam"].values()) == 3
        finally:
            await up.stop()
    finally:
        await rt.stop()


async def test_refused_message_goes_dead_with_the_platforms_reason_and_replays_after_a_fix(
    twins, specset, mappings, tmp_path: Path
) -> None:
    twin = await twins.start("jilin_imaging")
    bridge = make_bridge(twins, tmp_path, sources={"pacs": Source(adapter="dbview", spec="hospital_pacs/exam_report")},
                         routes=[Route(id="r", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam")])],
                         targets={"jilin": twins.target("jilin_imaging")})
    good_key = Path(bridge.secrets["jilin_imaging_sm2_public"].removeprefix("file:"))
    right = good_key.read_text(encoding="utf-8")
    good_key.write_text(generate_sm2_private_key().public_key.to_pem(), encoding="utf-8")  # a wrong platform key
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        (mid,) = await rt.receive("pacs", _records(specset, 1)[0])
        await wait_done(rt, 1)
        m = await rt.journal.get(mid)
        assert m is not None and m.state is State.DEAD
        assert m.last_error is not None and "400" in m.last_error  # the platform's own code and reason
        assert m.history[-1].outcome == "fatal" and m.attempts == 1  # not retried: resending cannot help
    finally:
        await rt.stop()
    good_key.write_text(right, encoding="utf-8")  # the fix: the right key
    journal = str(tmp_path / "journal.db")
    out = subprocess.run([sys.executable, "-m", "engine.cli", "replay", "--journal", journal, "--dead", "jilin_imaging/savePatientExam"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and "1 DEAD message(s)" in out.stdout, out.stderr
    rt = await runtime_for(bridge, specset, mappings, tmp_path)
    try:
        await wait_done(rt, 1)
        m = await rt.journal.get(mid)
        assert m is not None and m.state is State.SENT
        assert sum(twin.stats()["deliveries"]["savePatientExam"].values()) == 1
    finally:
        await rt.stop()
    listing = subprocess.run([sys.executable, "-m", "engine.cli", "messages", "--journal", journal, "--show", str(mid)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert listing.returncode == 0 and "fatal" in listing.stdout and "ok" in listing.stdout

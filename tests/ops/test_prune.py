"""`specbridge prune`: age and state from the CLI, on a real SQLite journal; counts reported, dry runs remove nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from engine.cli import main
from engine.journal import Attempt, Journal, State

DAY = 86400.0


async def _fill(path: Path) -> dict[str, list[int]]:
    """Old (40 days) and recent (1 day) messages in SENT, DEAD and pending states."""
    now = time.time()
    clock = {"t": now - 40 * DAY}
    ids: dict[str, list[int]] = {}
    async with await Journal.open(str(path), clock=lambda: clock["t"]) as j:
        for age in ("old", "new"):
            clock["t"] = now - (40 if age == "old" else 1) * DAY
            for state in ("SENT", "DEAD", "RECEIVED", "ERROR"):
                for n in range(3):
                    target = "idle" if state == "RECEIVED" else "jilin"  # never claimed: stays RECEIVED
                    r = await j.receive("jilin_imaging/savePatientExam", target, f'{{"n": "{age}{state}{n}"}}', key=f"{age}-{state}-{n}")
                    ids.setdefault(f"{age}-{state}", []).append(r.id)
            claimed = {m.id: m for m in await j.claim_due("jilin", 100)}
            for mid in ids[f"{age}-SENT"]:
                await j.mark_sent(mid, attempt=Attempt("ok", "POST"), lease=claimed[mid].lease)
            for mid in ids[f"{age}-DEAD"]:
                await j.mark_dead(mid, "refused", attempt=Attempt("fatal", "POST"), lease=claimed[mid].lease)
            for mid in ids[f"{age}-ERROR"]:
                await j.schedule_retry(mid, clock["t"] + 60, "timeout", attempt=Attempt("retry", "POST"), lease=claimed[mid].lease)
    return ids


async def _states(path: Path) -> dict[int, str]:
    async with await Journal.open(str(path)) as j:
        return {h.id: h.state.value for h in await j.search(limit=1000)}


def test_prune_by_age_and_state_reports_the_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jpath = tmp_path / "journal.db"
    ids = asyncio.run(_fill(jpath))
    before = asyncio.run(_states(jpath))
    assert len(before) == 24

    assert main(["prune", "--journal", str(jpath), "--older-than", "30d", "--state", "SENT", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would remove 3 SENT message(s) created before ") and "nothing removed" in out
    assert asyncio.run(_states(jpath)) == before

    assert main(["prune", "--journal", str(jpath), "--older-than", "30d", "--state", "SENT"]) == 0
    assert capsys.readouterr().out.startswith("removed 3 SENT message(s) created before ")
    after = asyncio.run(_states(jpath))
    assert set(before) - set(after) == set(ids["old-SENT"])

    assert main(["prune", "--journal", str(jpath), "--older-than", "2w", "--state", "SENT", "--state", "DEAD"]) == 0
    assert capsys.readouterr().out.startswith("removed 3 DEAD/SENT message(s)")
    left = asyncio.run(_states(jpath))
    assert set(left) == set(after) - set(ids["old-DEAD"])
    # pending messages are never pruned, however old; recent SENT/DEAD stay
    for kept in ("old-RECEIVED", "old-ERROR", "new-SENT", "new-DEAD", "new-RECEIVED", "new-ERROR"):
        assert set(ids[kept]) <= set(left), kept
    assert {left[i] for i in ids["old-ERROR"]} == {"ERROR"} and {left[i] for i in ids["old-RECEIVED"]} == {"RECEIVED"}

    assert main(["prune", "--journal", str(jpath), "--older-than", "12h", "--state", "SENT", "--state", "DEAD"]) == 0
    assert capsys.readouterr().out.startswith("removed 6 DEAD/SENT")


def test_prune_shows_progress_on_stderr_and_prunes_in_chunks(tmp_path: Path) -> None:
    async def go() -> tuple[int, list[int]]:
        now = time.time()
        async with await Journal.open(str(tmp_path / "j.db"), clock=lambda: now - 10 * DAY) as j:
            for i in range(25):
                await j.receive("i/f", "t", b"{}", key=str(i))
            for m in await j.claim_due("t", 100):
                await j.mark_sent(m.id, lease=m.lease)
        seen: list[int] = []
        async with await Journal.open(str(tmp_path / "j.db")) as j:
            assert await j.prune(now, [State.SENT], dry_run=True) == 25
            n = await j.prune(now, [State.SENT], chunk=10, progress=seen.append)
        return n, seen

    n, seen = asyncio.run(go())
    assert n == 25 and seen == [10, 10, 5]


def test_prune_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--journal", str(tmp_path / "nope.db"), "--older-than", "30d", "--state", "SENT"]) == 2
    assert "no such journal" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()
    for bad in ("30", "thirty days", "-3d", "nand"):
        with pytest.raises(SystemExit) as exc:
            main(["prune", "--journal", "j.db", "--older-than", bad, "--state", "SENT"])
        assert exc.value.code == 2
        assert "--older-than" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prune", "--journal", "j.db", "--older-than", "30d", "--state", "RECEIVED"])
    assert "invalid choice: 'RECEIVED'" in capsys.readouterr().err

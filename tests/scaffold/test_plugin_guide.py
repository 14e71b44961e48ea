"""docs/plugin-guide.md works as written: its runnable blocks run in a fresh tree, and the bridge it
writes delivers a hospital's reports to the twin of the platform it scaffolds (all real processes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import aiohttp
import pytest
from guide import Runner, Step, matches, parse
from scaffoldhelp import ROOT, cli_env, fresh_tree, run_cli, twin_process

from engine.demo.sample import build_hospital

GUIDE = ROOT / "docs/plugin-guide.md"


@dataclass
class Ran:
    tree: Path
    steps: list[Step]
    runner: Runner


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """The guide, run once from top to bottom in a fresh tree (specs/ and tests/data/ of the repository)."""
    assert shutil.which("curl"), "curl is needed (scripts/setup.sh installs it)"
    with contextlib.suppress(metadata.PackageNotFoundError):
        where = metadata.distribution("specbridge-demo-province").locate_file("")
        pytest.fail(f"the guide's sample plugin is installed in this environment ({where}): `pip uninstall specbridge-demo-province`")
    tree = fresh_tree(tmp_path_factory.mktemp("guide"))
    shutil.copytree(ROOT / "tests/data", tree / "tests/data")
    steps = parse(GUIDE.read_text(encoding="utf-8"))
    runner = Runner(tree, cli_env())
    runner.run(steps)
    return Ran(tree, steps, runner)


def test_runnable_blocks_work(ran: Ran) -> None:
    assert not ran.runner.failures, "\n\n".join(ran.runner.failures)
    runs = [c.text for s in ran.steps if s.kind == "run" for c in s.commands]
    # The sequence is in the guide and ran: new platform, check, twin; and the rest of the path.
    for needed in ("specbridge new platform demo_province", "specbridge check specs", "specbridge twin demo_province --port 8765 &",
                   "specbridge validate demo_province/uploadReport ok.json", "specbridge test specs/platforms/demo_province",
                   "specbridge docs demo_province -o docs/platforms", "pip install -e ./specbridge-demo-province", "specbridge plugins",
                   "python -m pytest -q specbridge-demo-province"):
        assert needed in runs
    assert ran.runner.ran == len(runs) >= 18
    assert (ran.tree / "docs/platforms/demo_province/uploadReport.md").is_file()


def test_file_blocks_are_the_specs_they_claim(ran: Ran) -> None:
    files = {s.path for s in ran.steps if s.kind == "file"}
    assert {"specs/mappings/exam_report.demo_province.yaml", "specs/bridges/demo_province.yaml"} <= files
    res = run_cli("check", "specs", "--strict-warnings", cwd=ran.tree, env=ran.runner.env)  # with the guide's plugin
    assert not [line for line in res.stdout.splitlines() if "demo_province" in line], res.stdout
    assert (ran.tree / ".site/specbridge_demo_province/__init__.py").is_file()


def test_the_harness_catches_a_wrong_guide(tmp_path: Path) -> None:
    """A command that fails, or prints something else than the guide says, is a failure naming the line."""
    guide = "\n".join(["<!-- runnable -->", "```console", "$ echo hello", "hello", "$ echo other", "hello", "$ false", "```",
                       "<!-- file: a/b.txt -->", "```text", "content", "```", "<!-- runnable -->", "```console", "$ cat a/b.txt",
                       "con...t", "```"])
    runner = Runner(tmp_path, cli_env())
    runner.run(parse(guide))
    assert [f.splitlines()[0] for f in runner.failures] == [
        "guide line 5: `echo other` did not print 'hello'; it printed:", "guide line 7: `false` exited 1:"]
    with pytest.raises(ValueError, match="line 1: <!-- runnable --> must be followed by a fenced block"):
        parse("<!-- runnable -->\ntext\n")
    assert matches("... platforms: 0 errors", "9 platforms: 0 errors") and not matches("0 errors", "9 platforms: 0 errors")


async def test_the_guide_bridge_delivers_to_the_twin(ran: Ran) -> None:
    """Section 10's unmarked block, run for real: the bridge file the guide wrote, a hospital database,
    the scaffolded platform's twin; every exam report arrives, and the journal says SENT."""
    tree = ran.tree
    hospital = build_hospital(tree / "hospital")
    want = len(hospital.exam_reports)
    plugin_env = ran.runner.env  # the specs use the guide's plugin from section 11
    async with twin_process(["demo_province", "--port", "0"], tree, plugin_env) as url, aiohttp.ClientSession() as http:
        env = {**plugin_env, "HOSPITAL_DIR": str(tree / "hospital"), "DEMO_PROVINCE_URL": url}
        bridge = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.cli", "run", "specs/bridges/demo_province.yaml",
                                                      cwd=tree, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            delivered: dict[str, int] = {}
            for _ in range(600):  # until every report arrived; the test's timeout is the only clock
                async with http.get(f"{url}/__twin__/stats") as r:
                    delivered = (await r.json())["deliveries"].get("uploadReport", {})
                if len(delivered) >= want or bridge.returncode is not None:
                    break
                await asyncio.sleep(0.1)
        finally:
            if bridge.returncode is None:
                bridge.send_signal(signal.SIGINT)
            out = (await asyncio.wait_for(bridge.communicate(), 30))[0].decode()
        assert bridge.returncode == 0, out
        assert len(delivered) == want and set(delivered.values()) == {1}, (delivered, out)
    res = run_cli("messages", "--journal", str(tree / "hospital/demo_province.journal.db"), "--state", "SENT", "--json", cwd=tree,
                  env=plugin_env)
    assert res.returncode == 0, res.stderr
    sent = json.loads(res.stdout)
    assert len(sent) == want and {m["interface"] for m in sent} == {"demo_province/uploadReport"}
    assert os.path.exists(tree / "hospital/pacs.cursor.db")

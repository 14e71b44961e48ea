"""`python -m engine.twin PLATFORM --port 0` (= `specbridge twin`) as a real subprocess: the first line
names the port; fault injection, stats and reset over HTTP; --state keeps records across restarts."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from twinhelp import ROOT

GOOD = {"uid": "ADSADT12", "appSecret": "meCG2Tz5PocVGEcoaM2Nvw=="}
ROW = {"RepNo": "LR0001", "PECardNum": "T1", "BarCode": "B1", "ApplyNo": "1", "ItemCode": "L1", "ExamItemID": "WBC",
       "ExamValue": "1", "ResultType": "H", "ResultDangerLevel": "0", "ResultScope": "", "ResultUnit": "", "ResultIndex": "1",
       "ReportDoc": "a", "ReportTime": "t", "ReviewDoc": "b", "ReviewTime": "t"}


@asynccontextmanager
async def twin_process(*args: str) -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.twin", *args, "--port", "0", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert m, line
        yield m.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


async def test_subprocess_fail_every_and_stats() -> None:
    async with twin_process("pe_system", "--fail-every", "2") as url, aiohttp.ClientSession() as http:
        statuses = []
        for i in range(4):
            async with http.post(f"{url}/api/lis/pubReport", json={**ROW, "RepNo": f"R{i}"}) as r:
                statuses.append(r.status)
        assert statuses == [200, 503, 200, 503]
        async with http.get(f"{url}/__twin__/stats") as r:
            stats = await r.json()
        assert stats["deliveries"] == {"lis_pubReport": {"R0|B1|WBC": 1, "R2|B1|WBC": 1}}
        assert stats["injected"] == {"lis_pubReport": 2}
        async with http.post(f"{url}/__twin__/reset") as r:
            assert r.status == 200
        async with http.get(f"{url}/__twin__/stats") as r:
            assert (await r.json())["deliveries"] == {}


async def test_subprocess_state_survives_a_restart(tmp_path: Path) -> None:
    state = str(tmp_path / "twin.sqlite")
    async with twin_process("pe_system", "--state", state) as url, aiohttp.ClientSession() as http, \
            http.post(f"{url}/api/lis/pubReport", json=ROW) as r:
        assert (await r.json())["status"] == 0
    async with twin_process("pe_system", "--state", state) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/__twin__/stats") as r:
            stats = await r.json()
        assert stats["records"] == {"lab_results": 1} and stats["deliveries"] == {"lis_pubReport": {"LR0001|B1|WBC": 1}}


async def test_subprocess_jilin_token_and_secrets_endpoint() -> None:
    async with twin_process("jilin_imaging") as url, aiohttp.ClientSession() as http:
        async with http.post(f"{url}/interface/getToken", json=GOOD) as r:
            assert (await r.json())["code"] == 200
        async with http.get(f"{url}/__twin__/secrets") as r:
            secrets = await r.json()
        assert "BEGIN PUBLIC KEY" in secrets["jilin_imaging_sm2_public"] and not any("PRIVATE" in v for v in secrets.values())

"""`specbridge demo`: a sample hospital bridged to twins of all five platforms, on loopback.

It generates the hospital (SQLite LIS/PACS views, HIS requests, DICOM files), starts the five
twins, runs `specs/bridges/demo.yaml` with the same runtime `specbridge run` uses, makes the HIS
call the bridge's API and a PACS send its DICOM files through a real SCU, shows progress, and
prints what went where. Exit 0 only when every record reached every platform it routes to.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from engine.admin.app import start_admin
from engine.demo.sample import build_hospital
from engine.runtime.serve import Running, open_bridge, start_sources
from engine.spec import load_specs
from engine.twin.serve import serve_twin

PLATFORMS = ("xinjiang_mr", "jilin_imaging", "city_lab_mr", "wedoctor_supervision", "pe_system")
CREDENTIALS = {
    "xinjiang_mr": {"org_code": "457759922", "org_name": "示例市人民医院", "user": "bridge", "password": "demo-pass"},
    "jilin_imaging": {"uid": "HOSP0001", "appSecret": "demo-secret-jilin"},
    "city_lab_mr": {"appId": "HOSP0001", "appSecret": "demo-secret-city"},
    "wedoctor_supervision": {"appid": "HOSP0001", "key": "demo-key-wedoctor"},
    "pe_system": {"certificate": "demo-cert"},
}
ENV = {  # the bridge file's env: references to the credentials above
    "SPECBRIDGE_DEMO_XJ_ORG_CODE": ("xinjiang_mr", "org_code"), "SPECBRIDGE_DEMO_XJ_ORG_NAME": ("xinjiang_mr", "org_name"),
    "SPECBRIDGE_DEMO_XJ_USER": ("xinjiang_mr", "user"), "SPECBRIDGE_DEMO_XJ_PASSWORD": ("xinjiang_mr", "password"),
    "SPECBRIDGE_DEMO_JILIN_UID": ("jilin_imaging", "uid"), "SPECBRIDGE_DEMO_JILIN_SECRET": ("jilin_imaging", "appSecret"),
    "SPECBRIDGE_DEMO_CITY_APPID": ("city_lab_mr", "appId"), "SPECBRIDGE_DEMO_CITY_SECRET": ("city_lab_mr", "appSecret"),
    "SPECBRIDGE_DEMO_WEDOCTOR_APPID": ("wedoctor_supervision", "appid"), "SPECBRIDGE_DEMO_PE_CERT": ("pe_system", "certificate"),
}


def _say(text: str) -> None:
    print(text, flush=True)


class Progress:
    """One line redrawn in place on a terminal; plain lines when piped (CI logs stay readable)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stdout.isatty()
        self.last = ""

    def show(self, sent: int, dead: int, waiting: int) -> None:
        width = 30
        done = sent + dead
        filled = int(width * done / self.total) if self.total else width
        line = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} delivered={sent} dead={dead} retrying={waiting}"
        if self.tty:
            sys.stdout.write("\r" + line)
            sys.stdout.flush()
        elif line != self.last:
            _say(line)
        self.last = line

    def end(self) -> None:
        if self.tty:
            sys.stdout.write("\n")


async def _post_his(port: int, path: str, bodies: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Each call's answer (the bridge's JSON reply; a query's carries the platform's answer)."""
    answers = []
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            async with http.post(f"http://127.0.0.1:{port}{path}", json=body) as resp:
                got = await resp.json(content_type=None) if resp.status == 200 else {"code": str(resp.status)}
                answers.append(got if isinstance(got, dict) else {"code": "?"})
    return answers


def _ok(answer: dict[str, Any]) -> bool:
    return str(answer.get("code", "0")) == "0"


async def run_demo(out: Path, specs_dir: Path, *, timeout_s: float = 180.0) -> int:
    started = time.perf_counter()
    out = out.resolve()
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    _say("specbridge demo: a sample hospital bridged to twins of five platforms, all on 127.0.0.1")
    data = build_hospital(out / "hospital")
    _say(f"  hospital: {len(data.patients)} patients, {len(data.lab_reports)} lab reports "
         f"({len(data.lab_rows)} LIS rows), {len(data.exam_reports)} exam reports, {len(data.recognition_queries)} HIS "
         f"recognition queries, {len(data.online_visits)} internet-hospital visits, {len(data.dicom_files)} DICOM files")
    specset = load_specs(specs_dir)
    async with AsyncExitStack() as stack:
        twins = {}
        keys = out / "keys"
        keys.mkdir()
        for pid in PLATFORMS:
            t = await serve_twin(specset, pid, credentials=CREDENTIALS[pid])
            stack.push_async_callback(t.stop)
            twins[pid] = t
            for name, value in t.twin.client_secrets_text().items():
                (keys / name).write_text(value, encoding="utf-8")
            os.environ[f"SPECBRIDGE_DEMO_{pid.upper()}_URL"] = t.url
            _say(f"  twin {pid:<22} {t.url}")
        os.environ["SPECBRIDGE_DEMO_DIR"] = str(out)
        for var, (pid, key) in ENV.items():
            os.environ[var] = CREDENTIALS[pid][key]
        runtime, _ = await open_bridge(specs_dir / "bridges" / "demo.yaml", specs_dir)
        runtime.base_dir = out
        await runtime.start()
        (out / "admin.token").write_text(secrets.token_urlsafe(32), encoding="utf-8")
        (out / "admin.token").chmod(0o600)
        running = Running(runtime, await start_sources(runtime, out))
        stack.push_async_callback(running.stop)
        running.admin = await start_admin(runtime, out)
        _say(f"  admin   {running.admin.url}  (dashboard at /, /metrics; token in {out / 'admin.token'})")
        for name, src in running.sources.items():
            port = getattr(src, "port", None)
            where = f" 127.0.0.1:{port}" if port else " (polling the views)"
            _say(f"  source {name:<10} {runtime.bridge.sources[name].adapter:<9}{where}")
        his_mr, his_ih, scp = running.sources["his_mr"], running.sources["his_ih"], running.sources["pacs_scp"]
        answers = await _post_his(his_mr.port, "/his/mr/recognition-query", data.recognition_queries)
        n_ih = sum(map(_ok, await _post_his(his_ih.port, "/his/ih/online-visit", data.online_visits)))
        answered = sum(map(_ok, answers))
        _say(f"  HIS asked {len(answers)} recognition queries and waited: {answered} answered by city_lab_mr HR01 "
             f"({sum(1 for a in answers if a.get('FOUND'))} with recognisable reports: no interface of city_lab_mr's document "
             "feeds its report store, so its twin has none)")
        for q, a in zip(data.recognition_queries, answers, strict=True):
            shown = f"FOUND={str(a.get('FOUND', False)).lower()}" + (f" VIEW_URL={a['VIEW_URL']}" if a.get("VIEW_URL") else "")
            _say(f"    {q['PATIENT_ID']} {q['VISIT_NO']:<16} code {a.get('code')} {shown if _ok(a) else a.get('message', '')}")
        _say(f"  HIS posted {n_ih} online visits to the bridge's API (journalled, delivered in the background)")
        from adapters.dicom import DicomScu

        scu = DicomScu("127.0.0.1", scp.port, called_ae="SPECBRIDGE", calling_ae="DEMO_PACS")
        results = await scu.store([str(p) for p in data.dicom_files])
        _say(f"  PACS sent {len(data.dicom_files)} DICOM files by C-STORE: {sum(1 for r in results if r == 0)} accepted")
        expected = data.expected_deliveries()
        total = sum(expected.values())
        progress = Progress(total)
        assert runtime.journal is not None
        deadline = time.perf_counter() + timeout_s
        by_iface: dict[str, dict[str, int]] = {}
        while True:
            by_iface = await runtime.journal.stats()
            sent = sum(s.get("SENT", 0) for s in by_iface.values())
            dead = sum(s.get("DEAD", 0) for s in by_iface.values())
            waiting = sum(s.get("ERROR", 0) for s in by_iface.values())
            progress.show(sent, dead, waiting)
            if sent + dead >= total or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.2)
        progress.end()
        _say("")
        _say(f"  {'platform interface':<40} {'expected':>8} {'sent':>6} {'dead':>6} {'twin got':>9}")
        ok = True
        for iface, n in expected.items():
            st = by_iface.get(iface, {})
            pid, _, iid = iface.partition("/")
            ts = twins[pid].stats()  # uploads count per natural key; queries count as answered requests
            got = sum(ts["deliveries"].get(iid, {}).values()) or ts["requests"].get(iid, 0)
            good = st.get("SENT", 0) == n and got >= n
            ok &= good
            _say(f"  {iface:<40} {n:>8} {st.get('SENT', 0):>6} {st.get('DEAD', 0):>6} {got:>9}  {'ok' if good else 'MISSING'}")
        if answered != len(answers):
            ok = False
            _say(f"  {len(answers) - answered} recognition queries were NOT answered")
        if not ok:
            dead_msgs = await runtime.journal.search(state="DEAD", limit=5)
            for m in dead_msgs:
                _say(f"  DEAD #{m.id} {m.interface}: {m.last_error}")
        _say("")
        verdict = "every record reached every platform it routes to" if ok else "some records were NOT delivered"
        _say(f"  {verdict} in {time.perf_counter() - started:.1f} s")
        _say(f"  look inside: specbridge messages --journal {out / 'journal.db'} --state SENT")
    return 0 if ok else 1

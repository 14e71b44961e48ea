"""The other end-to-end paths of issue 6, through the sources `specbridge run` starts and real sockets:
a PACS's DICOM C-STORE into the bridge's SCP plus the RIS view's exam index to jilin_imaging (token, SM2
fields, multipart upload), and the HIS's online visits to wedoctor_supervision with its signature (the
twin verifies it, and refuses a wrong one)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from adapters.dicom import SUCCESS, DicomScu
from adapters.dicom_files import dataset_bytes
from engine.bridge.model import Bridge, Route, RouteTarget, Source
from engine.demo import build_hospital
from engine.journal import State
from engine.runtime.config import check_bridge
from engine.runtime.serve import Running, start_sources
from tests.bridge.conftest import example, make_bridge, runtime_for
from tests.bridge.test_e2e_queries import messages, until


async def start(bridge: Bridge, specset, mappings, tmp: Path) -> Running:
    assert check_bridge(bridge, specset, "test", mappings) == []
    rt = await runtime_for(bridge, specset, mappings, tmp)
    return Running(rt, await start_sources(rt, tmp))


async def test_pacs_c_store_and_exam_index_reach_jilin(twins, specset, mappings, tmp_path: Path) -> None:
    jilin = await twins.start("jilin_imaging")
    data = build_hospital(tmp_path / "hospital", patients=4)
    studies = [e for e in data.exam_reports if e["STUDY_UID"]]
    assert studies and data.dicom_files
    pacs = Source(adapter="dbview", spec="hospital_pacs/exam_report",
                  settings={"database": str(data.database), "state": str(tmp_path / "pacs.cursor.db"), "interval_s": 0.1})
    scp = Source(adapter="dicom", spec="hospital_pacs/dicom_instance",
                 settings={"ae_title": "SPECBRIDGE", "port": 0, "spool": str(tmp_path / "spool")})
    bridge = make_bridge(twins, tmp_path, sources={"pacs": pacs, "pacs_scp": scp},
                         routes=[Route(id="exams", source="pacs", to=[RouteTarget(target="jilin", interface="savePatientExam")]),
                                 Route(id="dicom", source="pacs_scp", to=[RouteTarget(target="jilin", interface="uploadDicom")])],
                         targets={"jilin": twins.target("jilin_imaging")})
    run = await start(bridge, specset, mappings, tmp_path)
    try:
        scu = DicomScu("127.0.0.1", run.sources["pacs_scp"].port, called_ae="SPECBRIDGE", calling_ae="TEST_PACS")
        assert await scu.store([str(p) for p in data.dicom_files]) == [SUCCESS] * len(data.dicom_files)

        async def delivered() -> bool:
            sent = [m for i in ("jilin_imaging/savePatientExam", "jilin_imaging/uploadDicom")
                    for m in await messages(run.runtime, i) if m.state is State.SENT]
            return len(sent) == len(data.exam_reports) + len(data.dicom_files)

        await until(delivered)
        stats = jilin.stats()
        assert stats["delivered"] == {"savePatientExam": len(data.exam_reports), "uploadDicom": len(data.dicom_files)}
        assert stats["tokens"]["issued_today"] == 1 and not stats["errors"] and not stats["duplicates"]
        exams = {r.data["accessNumber"]: r.data for r in jilin.twin.store.find("exams")}
        for e in data.exam_reports:  # the twin opened the SM2-encrypted ID number with its private key
            assert exams[e["ACCESSION_NO"]]["idCardNo"] == e["ID_CARD"] and exams[e["ACCESSION_NO"]]["studyUid"] == e["STUDY_UID"]
        sent_files = {p.stem: p.read_bytes() for p in data.dicom_files}
        instances = jilin.twin.store.find("instances")
        assert sorted(r.data["instanceUid"] for r in instances) == sorted(sent_files)
        for r in instances:  # each image is the instance the PACS sent, linked to its exam index by accessNumber and studyUid
            assert r.data["studyUid"] == exams[r.data["accessNumber"]]["studyUid"]
            assert dataset_bytes(r.data["dicomFile"]["data"]) == dataset_bytes(sent_files[r.data["instanceUid"]])
    finally:
        await run.stop()


async def _post_visit(run: Running, body: dict) -> dict:
    port = run.sources["his_ih"].port
    async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{port}/his/ih/online-visit", json=body) as resp:
        assert resp.status == 200
        return await resp.json(content_type=None)


def _wedoctor_bridge(twins, tmp: Path) -> Bridge:
    return make_bridge(twins, tmp, sources={"his_ih": Source(adapter="http_json", spec="hospital_his/online_visit", settings={"port": 0})},
                       routes=[Route(id="visits", source="his_ih", to=[RouteTarget(target="wedoctor", interface="A2000"),
                                                                        RouteTarget(target="wedoctor", interface="A2001")])],
                       targets={"wedoctor": twins.target("wedoctor_supervision", headers={"appid": "{appid}"})})


async def test_online_visits_reach_wedoctor_with_a_signature_it_verifies(twins, specset, mappings, tmp_path: Path) -> None:
    wedoctor = await twins.start("wedoctor_supervision")
    run = await start(_wedoctor_bridge(twins, tmp_path), specset, mappings, tmp_path)
    try:
        body = example(specset, "hospital_his/online_visit")
        assert await _post_visit(run, body) == {"accepted": 2}

        async def delivered() -> bool:
            ms = [m for i in ("A2000", "A2001") for m in await messages(run.runtime, f"wedoctor_supervision/{i}")]
            return len(ms) == 2 and all(m.state is State.SENT for m in ms)

        await until(delivered)
        stats = wedoctor.stats()
        assert stats["delivered"] == {"A2000": 1, "A2001": 1} and not stats["errors"]
    finally:
        await run.stop()


async def test_a_wrong_signing_key_is_refused_by_wedoctor_and_nothing_is_stored(twins, specset, mappings, tmp_path: Path) -> None:
    wedoctor = await twins.start("wedoctor_supervision")
    bridge = _wedoctor_bridge(twins, tmp_path)
    key_file = Path(bridge.secrets["wedoctor_supervision_app_key"].removeprefix("file:"))
    key_file.write_text("not-the-key", encoding="utf-8")  # the bridge signs with a key the platform never issued
    run = await start(bridge, specset, mappings, tmp_path)
    try:
        await _post_visit(run, example(specset, "hospital_his/online_visit"))

        async def refused() -> bool:
            ms = await messages(run.runtime, "wedoctor_supervision/A2000")
            return bool(ms) and ms[0].attempts >= 1

        await until(refused)
        [m] = await messages(run.runtime, "wedoctor_supervision/A2000")
        assert m.state is State.DEAD and "signature does not match" in (m.last_error or ""), m.last_error  # the platform's reason
        stats = wedoctor.stats()
        assert stats["delivered"] == {} and stats["errors"]["A2000"] == {"crypto:INVALID_REQUEST": 1}
    finally:
        await run.stop()

"""Form and multipart posts: fields and file parts reach the sink; size limits hold while streaming."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from pathlib import Path

import aiohttp
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from adapters.base import Attachment, OutboundRequest
from adapters.form import Budget
from adapters.http_json import HttpOutbound
from adapters.http_limits import Limits, Refusal

MiB = 1024 * 1024
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# -- the sans-I/O budget ------------------------------------------------------------------------
def test_budget_refuses_a_file_part_past_its_field_limit() -> None:
    b = Budget(10_000, {"examPdf": 2000})
    b.start_part("examPdf")
    b.add("examPdf", 2000)
    with pytest.raises(Refusal) as exc:
        b.add("examPdf", 1)
    assert exc.value.path == "examPdf" and exc.value.rule == "size" and exc.value.status == 200
    assert "examPdf: file exceeds the limit of 2000 bytes" in exc.value.reason


def test_budget_refuses_the_request_past_its_limit() -> None:
    b = Budget(100)
    b.start_part("a")
    b.add("a", 60)
    b.start_part("b")
    with pytest.raises(Refusal, match="request body exceeds the limit of 100 bytes") as exc:
        b.add("b", 41)
    assert exc.value.status == 413


# -- helpers ------------------------------------------------------------------------------------
def make_dicom(path: Path) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.PatientID, ds.Modality, ds.AccessionNumber = "P0001", "OT", "CS23213233"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 8, 8, 7, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(64))
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


async def curl(url: str, *args: str) -> tuple[int, bytes]:
    """The real curl binary; returns (HTTP status, body)."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    body, _, code = out.rpartition(b"\n")
    return int(code or 0), body


# -- acceptance: curl uploads to the real jilin specs --------------------------------------------
async def test_curl_uploads_a_dicom_file_with_its_fields(serve, tmp_path: Path) -> None:
    inb, rec = await serve("jilin_imaging")
    data = make_dicom(tmp_path / "ct.dcm")
    status, body = await curl(
        f"http://127.0.0.1:{inb.port}/interface/uploadDicom",
        "-H", "X-Token: 34383213ADc@32IOa13ADc@3",
        "-F", "hospitalCode=SAF2313", "-F", "accessNumber=CS23213233",
        "-F", "studyUid=1.2.826.0.1.3680043.8.498.1", "-F", "seriesUid=1.2.826.0.1.3680043.8.498.2",
        "-F", "instanceUid=1.2.826.0.1.3680043.8.498.3",
        "-F", f"dicomFile=@{tmp_path / 'ct.dcm'};type=application/dicom",
    )  # fmt: skip
    assert (status, json.loads(body)) == (200, {"code": 200, "msg": "ok"})
    [msg] = rec.messages
    assert msg.interface == "jilin_imaging/uploadDicom"
    assert msg.body == {
        "hospitalCode": "SAF2313", "accessNumber": "CS23213233", "studyUid": "1.2.826.0.1.3680043.8.498.1",
        "seriesUid": "1.2.826.0.1.3680043.8.498.2", "instanceUid": "1.2.826.0.1.3680043.8.498.3",
    }  # fmt: skip
    [att] = msg.attachments
    assert (att.name, att.filename, att.content_type, att.size) == ("dicomFile", "ct.dcm", "application/dicom", len(data))
    assert rec.files["dicomFile"] == data


async def test_curl_uploads_a_pdf_spooled_to_disk_and_cleaned_after(serve, tmp_path: Path) -> None:
    inb, rec = await serve("jilin_imaging", limits=Limits(spool_bytes=64 * 1024))
    pdf = PDF + b"%" + b"x" * 1_500_000 + b"\n"
    (tmp_path / "r.pdf").write_bytes(pdf)
    status, body = await curl(
        f"http://127.0.0.1:{inb.port}/interface/saveExamPdf", "-H", "X-Token: t",
        "-F", "hospitalCode=SAF2313", "-F", "accessNumber=CS23213233", "-F", f"examPdf=@{tmp_path / 'r.pdf'};type=application/pdf",
    )  # fmt: skip
    assert status == 200 and json.loads(body)["code"] == 200
    [att] = rec.messages[0].attachments
    assert rec.files["examPdf"] == pdf and att.path is not None and att.data is None
    assert not att.path.exists()  # the adapter removes what the sink did not take


async def test_a_3mb_pdf_is_refused_naming_the_field(serve, tmp_path: Path) -> None:
    inb, rec = await serve("jilin_imaging")
    (tmp_path / "big.pdf").write_bytes(PDF + b"x" * 3_000_000)
    status, body = await curl(
        f"http://127.0.0.1:{inb.port}/interface/saveExamPdf", "-H", "X-Token: t",
        "-F", "hospitalCode=SAF2313", "-F", "accessNumber=CS23213233", "-F", f"examPdf=@{tmp_path / 'big.pdf'};type=application/pdf",
    )  # fmt: skip
    got = json.loads(body)
    assert status == 200 and got["code"] == 400
    assert "examPdf: file exceeds the limit of 2000000 bytes" in got["msg"]
    assert rec.messages == []


async def test_a_31mb_body_is_refused_with_the_documented_error(serve, tmp_path: Path) -> None:
    inb, rec = await serve("wedoctor_supervision")
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        fh.truncate(31 * MiB)
    url = f"http://127.0.0.1:{inb.port}/ihs/api/base/hospital"
    hdrs = ["-H", "service: A1000", "-H", "appid: a", "-H", "randomstr: r", "-H", "sign: s"]
    # with a Content-Length: refused before `100 Continue`, the body is never sent
    status, body = await curl(url, *hdrs, "-F", f"data=@{big}")
    got = json.loads(body)
    assert status == 413 and got["code"] == "SYSTEM_ERROR"
    assert "exceeds the limit of 31457280 bytes" in got["message"]
    # chunked, no length: refused while streaming, once the 30 MiB limit is crossed
    status, body = await curl(url, *hdrs, "-H", "Content-Type: application/json", "-H", "Transfer-Encoding: chunked",
                              "--data-binary", f"@{big}")  # fmt: skip
    assert status == 413 and "exceeds the limit of 31457280 bytes" in json.loads(body)["message"]
    assert rec.messages == []


async def test_a_31mb_upload_streams_to_disk_not_memory(serve, tmp_path: Path) -> None:
    """A0001 (超大附件) has no documented limit: 31 MiB passes under the engine cap, spooled, not buffered."""
    inb, rec = await serve("wedoctor_supervision", read_files=False)
    big = tmp_path / "big.pdf"
    with big.open("wb") as fh:
        fh.write(PDF)
        fh.truncate(31 * MiB)
    tracemalloc.start()
    try:
        status, body = await curl(
            f"http://127.0.0.1:{inb.port}/ihs/api/public/bigAttachment",
            "-H", "service: A0001", "-H", "appid: a", "-H", "randomstr: r", "-H", "sign: s", "-H", "Transfer-Encoding: chunked",
            "-F", "attaService=12", "-F", "attaId=RX-1", "-F", "fileType=pdf", "-F", "uptime=2020-02-25 10:00:00", "-F", "data=",
            "-F", f"fileUpload=@{big};type=application/pdf",
        )  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 200, body
    assert rec.messages[0].attachments[0].size == 31 * MiB
    assert peak < 4 * MiB


# -- fixture specs: urlencoded, multipart details, the outbound sender ----------------------------
async def test_urlencoded_form(serve) -> None:
    inb, rec = await serve("demo_http")
    url = f"http://127.0.0.1:{inb.port}/api/form"
    h = {"X-Token": "t", "service": "F1"}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data={"q": "胸片", "n": "3"}, headers=h) as r:
            assert r.status == 200
        async with s.post(url, data={"q": "x", "n": "three"}, headers=h) as r:
            got = await r.json()
    assert rec.messages[0].body == {"q": "胸片", "n": "3"}
    assert got["code"] == 400 and "n:" in got["msg"]


async def test_multipart_missing_file_and_unknown_part(serve) -> None:
    inb, rec = await serve("demo_http")
    fd = aiohttp.FormData()
    fd.add_field("docId", "D1")
    fd.add_field("stray", b"zz", filename="z.bin")
    url = f"http://127.0.0.1:{inb.port}/api/upload"
    async with aiohttp.ClientSession() as s, s.post(url, data=fd, headers={"X-Token": "t", "service": "U1"}) as r:
        got = await r.json()
    assert "doc is required" in got["msg"] and "stray is not a field" in got["msg"] and rec.messages == []


async def test_outbound_multipart_sender_reaches_our_form_adapter(serve, tmp_path: Path) -> None:
    inb, rec = await serve("demo_http", limits=Limits(spool_bytes=100))
    (tmp_path / "d.pdf").write_bytes(PDF * 20)
    out = HttpOutbound(inb.platform, f"http://127.0.0.1:{inb.port}")
    try:
        req = OutboundRequest(
            "demo_http/upload", b"", {"X-Token": "t"}, params={"docId": "D-7"},
            attachments=[Attachment("doc", "d.pdf", "application/pdf", len(PDF) * 20, path=tmp_path / "d.pdf"),
                         Attachment("extra", "e.txt", "text/plain", 2, data=b"hi")],
        )  # fmt: skip
        resp = await out.send(req)
    finally:
        await out.close()
    assert resp.status == 200
    assert rec.messages[0].body == {"docId": "D-7"} and rec.messages[0].headers["service"] == "U1"
    assert rec.files == {"doc": PDF * 20, "extra": b"hi"}

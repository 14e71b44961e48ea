"""dicom: real associations with dcmtk's echoscu/storescu, pynetdicom's storescu and our SCU.

"Byte-identical", precisely: the SCP stores `event.encoded_dataset(include_meta=True)`, i.e. a
128-byte zero preamble, `DICM`, a file meta group built from the association (SOP class and
instance, the negotiated transfer syntax, pynetdicom's implementation UID), then the dataset
exactly as it came off the wire. When the sender did not transcode (the negotiated transfer
syntax is the file's own), those dataset bytes equal the dataset part of the file the SCU sent,
byte for byte, and the stored file meta names the same SOP instance and transfer syntax. The file
meta cannot match the sender's: DIMSE never carries it.

All synthetic data; loopback; ephemeral ports.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from adapters.base import Attachment, InboundMessage, OutboundRequest, Reply, TransportError
from adapters.dicom import (
    CANNOT_UNDERSTAND,
    KEY_ATTRIBUTES,
    OUT_OF_RESOURCES,
    SOP_CLASS_NOT_SUPPORTED,
    SUCCESS,
    DicomFileError,
    DicomScp,
    DicomScu,
)
from adapters.dicom_files import dataset_bytes, dataset_offset, synthetic_instance, synthetic_study, write_instance
from engine.spec.model import DicomBinding

ECHOSCU, STORESCU = "/usr/bin/echoscu", "/usr/bin/storescu"


class Recorder:
    """A Sink that records messages; `answer` decides what the runtime says."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.answer: Reply | Exception = Reply(b"{}")

    async def __call__(self, msg: InboundMessage) -> Reply:
        await asyncio.sleep(0)
        if isinstance(self.answer, Exception):
            raise self.answer
        self.messages.append(msg)
        return self.answer


@pytest.fixture
async def scp(tmp_path: Path) -> AsyncIterator[tuple[DicomScp, Recorder]]:
    rec = Recorder()
    server = DicomScp("pacs/C-STORE", tmp_path / "spool", ae_title="SPECBRIDGE", sink_timeout_s=5)
    await server.start(rec)
    yield server, rec
    await server.stop()


async def run(*argv: str) -> tuple[int, str]:
    """A peer tool as a subprocess; the loop keeps running so the SCP's sink calls are served."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


def assert_byte_identical(sent: Path, msg: InboundMessage) -> None:
    (att,) = msg.attachments
    assert att.path is not None and att.content_type == "application/dicom"
    stored, original = att.path.read_bytes(), sent.read_bytes()
    assert att.size == len(stored)
    assert stored[:132] == b"\x00" * 128 + b"DICM"
    assert dataset_bytes(stored) == dataset_bytes(original)
    got, want = dcmread(att.path), dcmread(sent)
    assert got.file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID
    assert got.file_meta.MediaStorageSOPInstanceUID == want.SOPInstanceUID
    assert got.file_meta.MediaStorageSOPClassUID == want.SOPClassUID


def assert_attributes(sent: Path, msg: InboundMessage) -> None:
    ds = dcmread(sent)
    assert isinstance(msg.body, bytes)
    body = msgspec.json.decode(msg.body)
    for kw in KEY_ATTRIBUTES:
        assert body[kw] == str(ds.get(kw)), kw
    assert body["PatientName"] == str(ds.PatientName)
    assert body["InstanceNumber"] == str(ds.InstanceNumber)
    assert msg.interface == "pacs/C-STORE" and msg.meta["service"] == "C-STORE"


async def test_dcmtk_echoscu_gets_an_answer(scp: tuple[DicomScp, Recorder]) -> None:
    server, _ = scp
    code, out = await run(ECHOSCU, "-aet", "ECHOSCU", "-aec", "SPECBRIDGE", "127.0.0.1", str(server.port))
    assert code == 0, out


async def test_dcmtk_storescu_sends_files_byte_identical_with_attributes(scp: tuple[DicomScp, Recorder], tmp_path: Path) -> None:
    server, rec = scp
    files = synthetic_study(tmp_path / "out", count=2)
    files.append(
        write_instance(
            synthetic_instance(modality="OT", patient_name="测试^患者", charset="ISO_IR 192", accession="SYNACC0002"),
            tmp_path / "out" / "sc.dcm",
        )
    )
    code, out = await run(STORESCU, "-aet", "MODALITY1", "-aec", "SPECBRIDGE", "127.0.0.1", str(server.port), *map(str, files))
    assert code == 0, out
    assert [s.status for s in server.outcomes] == [SUCCESS] * 3
    assert len(rec.messages) == 3
    for sent, msg in zip(files, rec.messages, strict=True):
        assert_byte_identical(sent, msg)
        assert_attributes(sent, msg)
        assert msg.meta["calling_ae"] == "MODALITY1" and msg.meta["transfer_syntax"] == ExplicitVRLittleEndian
    assert msgspec.json.decode(rec.messages[2].body)["PatientName"] == "测试^患者"  # type: ignore[arg-type]


async def test_pynetdicom_storescu_sends_an_implicit_vr_file(scp: tuple[DicomScp, Recorder], tmp_path: Path) -> None:
    server, rec = scp
    sent = write_instance(synthetic_instance(transfer_syntax=ImplicitVRLittleEndian, instance_number=7), tmp_path / "ivr.dcm")
    argv = [sys.executable, "-m", "pynetdicom", "storescu", "127.0.0.1", str(server.port), str(sent), "-aec", "SPECBRIDGE", "-cx"]
    code, out = await run(*argv)
    assert code == 0, out
    (msg,) = rec.messages
    assert msg.meta["transfer_syntax"] == ImplicitVRLittleEndian
    assert_byte_identical(sent, msg)
    assert_attributes(sent, msg)


async def test_success_only_after_the_sink_acknowledged(scp: tuple[DicomScp, Recorder], tmp_path: Path) -> None:
    server, rec = scp
    (f,) = synthetic_study(tmp_path / "out", count=1)
    scu = DicomScu("127.0.0.1", server.port, called_ae="SPECBRIDGE")

    rec.answer = RuntimeError("journal down")
    assert await scu.store([f]) == [OUT_OF_RESOURCES]
    rec.answer = Reply(b'{"error":"busy"}', status=503)
    assert await scu.store([f]) == [OUT_OF_RESOURCES]
    assert list((tmp_path / "spool").glob("*.dcm")) == [], "unacknowledged instances leave no spool file"

    rec.answer = Reply(b'{"error":"PatientID: required"}', status=400)
    assert await scu.store([f]) == [CANNOT_UNDERSTAND]
    rec.answer = Reply(b"{}")
    assert await scu.store([f]) == [SUCCESS]
    assert len(rec.messages) == 3  # the 503, the refused one (journalled as such) and the accepted one


async def test_a_sink_that_never_answers_gets_a_retryable_status(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def stuck(msg: InboundMessage) -> Reply:
        await release.wait()
        return Reply(b"{}")

    server = DicomScp("pacs/C-STORE", tmp_path / "spool", sink_timeout_s=0.2)
    await server.start(stuck)
    try:
        (f,) = synthetic_study(tmp_path / "out", count=1)
        assert await DicomScu("127.0.0.1", server.port).store([f]) == [OUT_OF_RESOURCES]
        assert await DicomScu("127.0.0.1", server.port).echo() == SUCCESS  # the loop was never blocked
    finally:
        release.set()
        await server.stop()


async def test_our_scu_forwards_a_spooled_file_byte_identical(scp: tuple[DicomScp, Recorder], tmp_path: Path) -> None:
    server, rec = scp
    (f,) = synthetic_study(tmp_path / "out", count=1, modality="CT")
    code, out = await run(STORESCU, "-aec", "SPECBRIDGE", "127.0.0.1", str(server.port), str(f))
    assert code == 0, out
    spooled = rec.messages[0].attachments[0]

    rec2 = Recorder()
    downstream = DicomScp("cloud/C-STORE", tmp_path / "spool2", ae_title="CLOUDPACS", require_called_aet=True)
    await downstream.start(rec2)
    try:
        scu = DicomScu("127.0.0.1", downstream.port, called_ae="CLOUDPACS", calling_ae="SPECBRIDGE")
        assert await scu.echo() == SUCCESS
        resp = await scu.send(OutboundRequest(interface="cloud/C-STORE", body=b"", attachments=[spooled]))
        assert resp.status == 200 and msgspec.json.decode(resp.body) == {"statuses": ["0x0000"]}
        in_memory = Attachment(name="file", filename="x.dcm", content_type="application/dicom", size=0, data=f.read_bytes())
        assert (await scu.send(OutboundRequest(interface="cloud/C-STORE", body=b"", attachments=[in_memory]))).status == 200
        assert len(rec2.messages) == 2
        for m in rec2.messages:
            assert_byte_identical(f, m)
            assert m.meta["calling_ae"] == "SPECBRIDGE"
        with pytest.raises(TransportError, match="rejected"):
            await DicomScu("127.0.0.1", downstream.port, called_ae="WRONG").echo()
    finally:
        await downstream.stop()


async def test_the_binding_names_the_ae_and_peers_must_call_it(tmp_path: Path) -> None:
    server = DicomScp.for_binding("pacs/C-STORE", DicomBinding(service="C-STORE", ae_title="HOSPPACS"), tmp_path / "s")
    await server.start(Recorder())
    try:
        code, _ = await run(ECHOSCU, "-aec", "OTHER", "127.0.0.1", str(server.port))
        assert code != 0
        code, out = await run(ECHOSCU, "-aec", "HOSPPACS", "127.0.0.1", str(server.port))
        assert code == 0, out
    finally:
        await server.stop()
    with pytest.raises(TransportError, match="not C-FIND"):
        DicomScp.for_binding("pacs/find", DicomBinding(service="C-FIND"), tmp_path / "s")


async def test_nobody_listening_is_a_transport_error(tmp_path: Path) -> None:
    server = DicomScp("x/C-STORE", tmp_path / "s")
    await server.start(Recorder())
    port = server.port
    await server.stop()
    with pytest.raises(TransportError):
        await DicomScu("127.0.0.1", port, timeout_s=5).echo()


async def test_a_peer_without_the_files_syntax_and_a_non_dicom_file(tmp_path: Path) -> None:
    implicit_only = DicomScp("x/C-STORE", tmp_path / "s", transfer_syntaxes=[ImplicitVRLittleEndian])
    await implicit_only.start(Recorder())
    try:
        (f,) = synthetic_study(tmp_path / "out", count=1)  # Explicit VR Little Endian: never transcoded
        scu = DicomScu("127.0.0.1", implicit_only.port)
        assert await scu.store([f]) == [SOP_CLASS_NOT_SUPPORTED]
        resp = await scu.send(OutboundRequest(interface="x", body=b"", attachments=[Attachment("f", "f", None, 0, path=f)]))
        assert resp.status == 400 and msgspec.json.decode(resp.body) == {"statuses": ["0x0122"]}
        (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 not dicom")
        with pytest.raises(DicomFileError, match=r"report.pdf: not a DICOM Part-10 file"):
            await scu.store([tmp_path / "report.pdf"])
        with pytest.raises(DicomFileError, match="no DICOM file attached"):
            await scu.send(OutboundRequest(interface="x", body=b""))
    finally:
        await implicit_only.stop()


def test_dataset_offset_reads_the_meta_group_length(tmp_path: Path) -> None:
    f = write_instance(synthetic_instance(), tmp_path / "a.dcm")
    data = f.read_bytes()
    from pynetdicom.dsutils import split_dataset

    assert dataset_offset(data) == split_dataset(f)[1]
    with pytest.raises(ValueError, match="DICM"):
        dataset_offset(data[1:])

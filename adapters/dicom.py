"""DICOM: a pynetdicom SCP (C-ECHO, C-STORE) as an inbound half, and an SCU to forward.

pynetdicom runs each association on its own thread. The C-STORE handler writes the instance to the
spool exactly as received (`event.encoded_dataset(include_meta=True)`: preamble, a file meta group
built from the association, then the dataset bytes the peer sent, never decoded and re-encoded),
then hands the message to the Sink on the event loop with `run_coroutine_threadsafe` and waits
for it with a timeout on its own thread, so the loop is never blocked. The peer gets Success only
after the Sink acknowledged (the runtime journalled the message), else a failure status it will
retry on (0xA700) or not (0xC000, the runtime refused the instance).

The SCU (C-ECHO, C-STORE of spooled files) runs pynetdicom's blocking calls in `asyncio.to_thread`,
and sends a file's dataset bytes as they are (pynetdicom's chunked send), so forwarding is
byte-faithful too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import re
import socket
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from adapters.base import Attachment, InboundMessage, OutboundRequest, OutboundResponse, Reply, Sink, TransportError
from engine.errors import SpecbridgeError
from engine.spec.model import DicomBinding

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
]
"""Accepted as they come: the SCP stores bytes and never decodes pixels, so compressed is fine."""

KEY_ATTRIBUTES = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "AccessionNumber", "PatientID", "Modality", "StudyDate")
EXTRA_ATTRIBUTES = (
    "SOPClassUID",
    "StudyTime",
    "SeriesNumber",
    "InstanceNumber",
    "PatientName",
    "PatientSex",
    "PatientAge",
    "InstitutionName",
)
"""What an imaging platform's row needs beyond the key (xinjiang_mr v_web_jcjg: series no, instance no...)."""

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
_UID = re.compile(r"^[0-9.]{1,64}$")


def _no_delay(event: evt.Event) -> None:
    """TCP_NODELAY: a C-STORE is a command PDU then a data PDU; with Nagle the second waits for the
    peer's delayed ACK (~40 ms), capping an association at ~20 instances/s (measured: 20 -> 150+)."""
    with contextlib.suppress(AttributeError, OSError):
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DicomFileError(SpecbridgeError):
    """A file handed to the SCU is not a Part-10 DICOM file (not retryable: the input is wrong)."""


def key_attributes(ds: Any, names: Sequence[str] = KEY_ATTRIBUTES + EXTRA_ATTRIBUTES) -> dict[str, str | None]:
    """The attributes a message carries, as strings (PN and IS rendered), None when absent or empty."""
    out: dict[str, str | None] = {}
    for kw in names:
        v = ds.get(kw)
        out[kw] = None if v is None or v == "" else str(v)
    return out


def _write_durably(directory: Path, name: str, data: bytes) -> Path:
    """Temp file, fsync, rename: a spool file is whole or absent, and survives a crash once acknowledged."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".in-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        dest = directory / name
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


@dataclass(slots=True)
class StoreOutcome:
    """Per-instance record for tests and metrics: what the SCP answered and where the file went."""

    status: int
    path: Path | None
    sop_instance_uid: str | None


class DicomScp:
    """Inbound half of `dicom`: `start(sink)` listens, `stop()` ends associations and the server."""

    def __init__(
        self,
        interface: str,
        spool_dir: str | Path,
        *,
        ae_title: str = "SPECBRIDGE",
        host: str = "127.0.0.1",
        port: int = 0,
        require_called_aet: bool = False,
        sink_timeout_s: float = 30.0,
        network_timeout_s: float = 60.0,
        max_associations: int = 10,
        attributes: Sequence[str] = KEY_ATTRIBUTES + EXTRA_ATTRIBUTES,
        transfer_syntaxes: Sequence[str] = TRANSFER_SYNTAXES,
    ) -> None:
        self.interface = interface
        self.spool_dir = Path(spool_dir)
        self.ae_title = ae_title
        self.host = host
        self.port = port
        """0 picks an ephemeral port; after `start` this is the bound port."""
        self.require_called_aet = require_called_aet
        self.sink_timeout_s = sink_timeout_s
        self.network_timeout_s = network_timeout_s
        self.max_associations = max_associations
        self.attributes = tuple(attributes)
        self.transfer_syntaxes = list(transfer_syntaxes)
        self.outcomes: deque[StoreOutcome] = deque(maxlen=1000)
        self._ae: AE | None = None
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._sink: Sink | None = None

    @classmethod
    def for_binding(cls, interface: str, binding: DicomBinding, spool_dir: str | Path, **kw: Any) -> DicomScp:
        """The AE title comes from the spec (`binding.dicom.ae_title`); when given, peers must call it."""
        if binding.service not in ("C-STORE", "C-ECHO"):
            raise TransportError(f"{interface}: the SCP serves C-STORE and C-ECHO, not {binding.service}")
        if binding.ae_title:
            kw.setdefault("ae_title", binding.ae_title)
            kw.setdefault("require_called_aet", True)
        return cls(interface, spool_dir, **kw)

    async def start(self, sink: Sink) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        ae = AE(ae_title=self.ae_title)
        ae.add_supported_context(Verification)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, self.transfer_syntaxes)
        ae.require_called_aet = self.require_called_aet
        ae.network_timeout = self.network_timeout_s
        ae.acse_timeout = self.network_timeout_s
        ae.dimse_timeout = self.network_timeout_s
        ae.maximum_associations = self.max_associations
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_CONN_OPEN, _no_delay)]
        self._server = await asyncio.to_thread(ae.start_server, (self.host, self.port), block=False, evt_handlers=handlers)
        self._ae = ae
        self.port = self._server.server_address[1]
        log.info("DICOM SCP %s listening on %s:%d for %s", self.ae_title, self.host, self.port, self.interface)

    async def stop(self) -> None:
        """Stop accepting, abort open associations. The loop keeps running meanwhile, so a handler
        waiting on the Sink gets its answer instead of deadlocking the shutdown."""
        if self._ae is not None:
            await asyncio.to_thread(self._ae.shutdown)
            self._ae = None
            self._server = None

    # --- runs on pynetdicom's association threads ---------------------------------------------

    def _on_store(self, event: evt.Event) -> int:
        status, path, sop = self._store(event)
        self.outcomes.append(StoreOutcome(status, path, sop))
        return status

    def _store(self, event: evt.Event) -> tuple[int, Path | None, str | None]:
        if threading.get_ident() == self._loop_thread or self._loop is None or self._sink is None:
            log.error("C-STORE handler on the event loop's thread or before start: refusing")
            return OUT_OF_RESOURCES, None, None
        try:
            data = event.encoded_dataset(include_meta=True)
            attrs = key_attributes(event.dataset, self.attributes)
        except Exception as exc:  # a dataset pydicom cannot parse: the peer must not resend it as is
            log.warning("C-STORE from %s: undecodable dataset (%s)", event.assoc.requestor.ae_title, type(exc).__name__)
            return CANNOT_UNDERSTAND, None, None
        sop = attrs.get("SOPInstanceUID") or str(event.request.AffectedSOPInstanceUID or "")
        stem = sop if _UID.match(sop) else "instance"
        try:
            path = _write_durably(self.spool_dir, f"{stem}.{uuid.uuid4().hex[:12]}.dcm", data)
        except OSError as exc:
            log.error("C-STORE: spool write failed: %s", exc)
            return OUT_OF_RESOURCES, None, sop
        msg = self._message(event, attrs, path, len(data))
        fut = asyncio.run_coroutine_threadsafe(self._sink(msg), self._loop)
        try:
            reply: Reply = fut.result(self.sink_timeout_s)
        except concurrent.futures.TimeoutError:
            fut.cancel()  # the file stays: the runtime may have journalled it just now
            log.warning("C-STORE: sink gave no answer in %.1f s; peer told to retry", self.sink_timeout_s)
            return OUT_OF_RESOURCES, path, sop
        except Exception as exc:
            log.warning("C-STORE: sink failed (%s); peer told to retry", type(exc).__name__)
            path.unlink(missing_ok=True)
            return OUT_OF_RESOURCES, None, sop
        if reply.status >= 500:
            path.unlink(missing_ok=True)
            return OUT_OF_RESOURCES, None, sop
        if reply.status >= 400:
            return CANNOT_UNDERSTAND, path, sop
        return SUCCESS, path, sop

    def _message(self, event: evt.Event, attrs: dict[str, str | None], path: Path, size: int) -> InboundMessage:
        assoc = event.assoc
        att = Attachment(name="file", filename=path.name, content_type="application/dicom", size=size, path=path)
        return InboundMessage(
            interface=self.interface,
            body=msgspec.json.encode(attrs),
            attachments=[att],
            meta={
                "transport": "dicom",
                "service": "C-STORE",
                "calling_ae": assoc.requestor.ae_title,
                "called_ae": assoc.acceptor.ae_title,
                "peer": f"{assoc.requestor.address}:{assoc.requestor.port}",
                "transfer_syntax": str(event.context.transfer_syntax),
            },
        )


class DicomScu:
    """Outbound half of `dicom`: C-ECHO and C-STORE of Part-10 files to one remote AE."""

    def __init__(
        self, host: str, port: int, *, called_ae: str = "ANY-SCP", calling_ae: str = "SPECBRIDGE", timeout_s: float = 30.0
    ) -> None:
        self.host = host
        self.port = port
        self.called_ae = called_ae
        self.calling_ae = calling_ae
        self.timeout_s = timeout_s

    def _ae(self) -> AE:
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        return ae

    def _associate(self, ae: AE) -> Any:
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae, evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)])
        if not assoc.is_established:
            raise TransportError(f"DICOM association with {self.called_ae}@{self.host}:{self.port} was rejected or failed")
        return assoc

    async def echo(self) -> int:
        return await asyncio.to_thread(self._echo)

    def _echo(self) -> int:
        ae = self._ae()
        ae.add_requested_context(Verification)
        assoc = self._associate(ae)
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if "Status" not in status:
            raise TransportError(f"C-ECHO to {self.called_ae}: no answer (timeout or abort)")
        return int(status.Status)

    async def store(self, paths: Sequence[str | Path]) -> list[int]:
        """C-STORE each file in one association; returns each DIMSE status."""
        return await asyncio.to_thread(self._store, [Path(p) for p in paths])

    def _store(self, paths: list[Path]) -> list[int]:
        ae = self._ae()
        ae.add_requested_context(Verification)  # so a peer accepting none of the files' contexts still
        # establishes, and each file gets a clear 0x0122 instead of a retryable association failure
        for p in paths:
            try:
                meta = read_file_meta_info(p)
                pair = (meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
            except (InvalidDicomError, AttributeError, OSError) as exc:
                raise DicomFileError(f"{p.name}: not a DICOM Part-10 file with SOP class and transfer syntax ({exc})") from None
            if pair not in {(c.abstract_syntax, c.transfer_syntax[0]) for c in ae.requested_contexts}:
                ae.add_requested_context(pair[0], pair[1])
        # send the file's dataset bytes as they are (an exact transfer-syntax match is required,
        # hence one context per file syntax above); process-wide, and what a forwarder wants
        _config.STORE_SEND_CHUNKED_DATASET = True
        assoc = self._associate(ae)
        out = []
        try:
            for p in paths:
                try:
                    status = assoc.send_c_store(p)
                except ValueError as exc:  # the peer accepted no context for this class and syntax
                    log.warning("C-STORE of %s to %s: %s", p.name, self.called_ae, exc)
                    out.append(SOP_CLASS_NOT_SUPPORTED)
                    continue
                if "Status" not in status:
                    raise TransportError(f"C-STORE of {p.name} to {self.called_ae}: no answer (timeout or abort)")
                out.append(int(status.Status))
        finally:
            if assoc.is_established:
                assoc.release()
        return out

    async def send(self, request: OutboundRequest) -> OutboundResponse:
        """The `Outbound` seam: C-STORE every attachment. 200 when all succeeded (warnings count as
        success), 503 when the peer is out of resources (retry), else 400."""
        if not request.attachments:
            raise DicomFileError(f"{request.interface}: no DICOM file attached to send")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        paths: list[Path] = []
        temps: list[Path] = []
        try:
            for a in request.attachments:
                if a.path is not None:
                    paths.append(a.path)
                else:
                    fd, tmp = tempfile.mkstemp(suffix=".dcm")
                    with os.fdopen(fd, "wb") as f:
                        f.write(a.read())
                    temps.append(Path(tmp))
                    paths.append(Path(tmp))
            statuses = await asyncio.wait_for(self.store(paths), self.timeout_s * (1 + len(paths)))
        except TimeoutError:
            raise TransportError(f"C-STORE to {self.called_ae}: no complete answer in time") from None
        finally:
            for t in temps:
                t.unlink(missing_ok=True)
        failed = [s for s in statuses if s != SUCCESS and not (s == 0x0001 or 0xB000 <= s <= 0xBFFF)]
        code = 200 if not failed else 503 if all(0xA700 <= s <= 0xA7FF for s in failed) else 400
        body = msgspec.json.encode({"statuses": [f"0x{s:04X}" for s in statuses]})
        return OutboundResponse(status=code, body=body, elapsed_s=loop.time() - t0)

    async def close(self) -> None:
        return None

"""Hostile input: entity bombs, external entities, truncated and trickled bodies.

Each gets a clear refusal within the configured read deadline (1 s here), and the server keeps
serving other clients meanwhile. Assertions are about behaviour (what was answered, and that a
good request completed while the bad one was still pending), never about durations.
"""

from __future__ import annotations

import asyncio

import aiohttp
from examples import example

from adapters.base import Reply
from adapters.http_limits import Limits
from adapters.soap_envelope import build_call

LIMITS = Limits(read_timeout_s=1.0)
NS = "http://tempuri.org/"
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<DeleteLabInfo xmlns="http://tempuri.org/"><strFilter>&lol9;</strFilter></DeleteLabInfo></soap:Body></soap:Envelope>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<DeleteLabInfo xmlns="http://tempuri.org/"><strFilter>&xxe;</strFilter></DeleteLabInfo></soap:Body></soap:Envelope>"""


async def post(url: str, data: bytes, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.post(url, data=data, headers={"Content-Type": "text/xml", **headers}) as r:
        return r.status, await r.text()


async def test_entity_bomb_and_external_entity_are_refused(serve) -> None:
    inb, rec = await serve("xinjiang_mr", limits=LIMITS)
    url = f"http://127.0.0.1:{inb.port}/Myhealth"
    for doc in (BOMB, XXE):
        status, text = await post(url, doc)
        assert status == 500 and "<faultcode>soap:Client</faultcode>" in text
        assert "XML with a DOCTYPE is refused (entity expansion and external entities are not allowed)" in text
        assert "root:" not in text
    assert rec.messages == []


async def test_entity_bomb_inside_a_string_parameter_is_refused_naming_it(serve, specs) -> None:
    inb, rec = await serve("xinjiang_mr", limits=LIMITS)
    params = example(specs.interface("xinjiang_mr/DeleteLabInfo"))[0]
    params["strFilter"] = BOMB.decode()
    status, text = await post(f"http://127.0.0.1:{inb.port}/Myhealth", build_call("1.1", NS, "DeleteLabInfo", params))
    assert status == 200 and "error:strFilter: XML with a DOCTYPE is refused" in text and rec.messages == []


async def test_truncated_xml_is_a_fault(serve, specs) -> None:
    inb, _ = await serve("xinjiang_mr", limits=LIMITS)
    params = example(specs.interface("xinjiang_mr/DeleteLabInfo"))[0]
    raw = build_call("1.2", NS, "DeleteLabInfo", params)
    status, text = await post(f"http://127.0.0.1:{inb.port}/Myhealth", raw[: len(raw) // 2], **{"Content-Type": "application/soap+xml"})
    assert status == 400 and "soap:Sender" in text and "malformed XML" in text


async def trickle(port: int, head: bytes, body: bytes, *, per_byte: bool) -> tuple[bytes, int]:
    """Send `head`, then `body` one byte a second (per_byte) or all at once and then stall.

    Returns the server's answer and how many body bytes had been sent when it came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    answer = asyncio.ensure_future(reader.read(65536))
    sent = 0
    chunks = [body[i : i + 1] for i in range(len(body))] if per_byte else [body]
    for c in chunks:
        writer.write(c)
        await writer.drain()
        sent += len(c)
        done, _ = await asyncio.wait({answer}, timeout=1.0)
        if done:
            break
    data = await asyncio.wait_for(answer, 10)
    writer.close()
    return data, sent


def _head(path: str, length: int, ctype: str, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


async def _good_jilin(port: int, specs) -> int:
    body, headers = example(specs.interface("jilin_imaging/savePatientExam"))
    url = f"http://127.0.0.1:{port}/interface/savePatientExam"
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        return (await r.json())["code"]


async def test_a_body_sent_one_byte_a_second_is_refused_while_others_are_served(serve, specs) -> None:
    inb, rec = await serve("jilin_imaging", limits=LIMITS, reply=Reply(b'{"code": 200, "msg": "ok"}'))
    slow = asyncio.ensure_future(
        trickle(inb.port, _head("/interface/savePatientExam", 100, "application/json", "X-Token: t\r\n"), b"{" + b" " * 99, per_byte=True)
    )
    assert await _good_jilin(inb.port, specs) == 200
    assert not slow.done()  # the good client was served while the slow one was still trickling
    answer, sent = await slow
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and sent < 100
    assert b'"code":400' in body and b"request body not received within 1 s" in body
    assert [m.interface for m in rec.messages] == ["jilin_imaging/savePatientExam"]


async def test_a_truncated_body_is_refused_at_the_deadline_while_others_are_served(serve, specs) -> None:
    inb, rec = await serve("xinjiang_mr", limits=LIMITS, reply=Reply(b"ok"))
    params = example(specs.interface("xinjiang_mr/DeleteLabInfo"))[0]
    raw = build_call("1.1", NS, "DeleteLabInfo", params)
    stalled = asyncio.ensure_future(trickle(inb.port, _head("/Myhealth", len(raw) + 500, "text/xml"), raw, per_byte=False))
    status, text = await post(f"http://127.0.0.1:{inb.port}/Myhealth", raw)
    assert status == 200 and "<tns:DeleteLabInfoResult>ok</tns:DeleteLabInfoResult>" in text
    assert not stalled.done()
    answer, _ = await stalled
    assert answer.startswith(b"HTTP/1.1 408") and f"({len(raw)} of {len(raw) + 500} bytes arrived)".encode() in answer
    assert b"soap:Client" in answer and len(rec.messages) == 1


async def test_a_trickled_multipart_upload_is_refused(serve) -> None:
    inb, rec = await serve("jilin_imaging", limits=LIMITS)
    body = b'--B\r\nContent-Disposition: form-data; name="hospitalCode"\r\n\r\nSAF2313\r\n--B--\r\n'
    head = _head("/interface/saveExamPdf", len(body), "multipart/form-data; boundary=B")
    answer, sent = await trickle(inb.port, head, body, per_byte=True)
    assert answer.startswith(b"HTTP/1.1 408") and sent < len(body) and rec.messages == []


async def test_an_oversize_soap_call_is_a_fault_before_it_is_read(serve) -> None:
    inb, rec = await serve("demo_soap", limits=Limits(max_request_bytes=64 * 1024, read_timeout_s=1.0))
    raw = build_call("1.1", "http://demo.example/ws/", "Ping", {"strText": "x" * 100_000})
    status, text = await post(f"http://127.0.0.1:{inb.port}/Demo", raw)
    assert status == 413 and "exceeds the limit of 65536 bytes" in text and "soap:Client" in text and rec.messages == []

"""Clients that hold connections without finishing a request (slowloris, half-open sockets) and more
connections than the service can keep: they are closed or refused, and everyone else is still served
(issue 12 item 5). Real sockets on loopback; the connection cap and the file-descriptor pressure run
the real `kore-voice serve` in a subprocess."""

from __future__ import annotations

import asyncio
import re
from contextlib import suppress

import pytest
from doors.conftest import door_settings, running
from raw_http import ANSWER_S, Answer, exchange, parse, request
from serve_process import serving

from adapter.server import runner_options

HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
KEEP_ALIVE_GET = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def closed_without_answer(reader: asyncio.StreamReader) -> bool:
    with suppress(ConnectionError):  # a reset or a broken pipe: closed all the same
        return await asyncio.wait_for(reader.read(), ANSWER_S) == b""
    return True


async def test_half_sent_request_heads_are_closed_after_the_header_timeout_while_others_are_served():
    settings = door_settings(KORE_VOICE_HEADER_TIMEOUT_SECONDS="2")
    async with running(settings, **runner_options(settings)) as client:
        port = client.server.port
        slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(50)]
        for _, writer in slow:
            writer.write(HALF_HEAD)
        trickling_reader, trickling = slow[0]

        async def trickle() -> None:  # a header line now and then: still not a whole head
            while not trickling.is_closing():
                trickling.write(b"X-Pad: 1\r\n")
                await asyncio.sleep(0.2)

        pad = asyncio.create_task(trickle())
        assert (await client.get("/healthz")).status == 200  # served while 50 connections hang
        started = asyncio.get_running_loop().time()
        assert all(await asyncio.gather(*(closed_without_answer(reader) for reader, _ in slow)))
        assert asyncio.get_running_loop().time() - started < ANSWER_S
        pad.cancel()
        for _, writer in slow:
            writer.close()
        assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("path", ["/v1/calls", "/twilio/voice"])
async def test_a_body_trickled_past_the_body_timeout_gets_408_and_is_closed(path: str):
    settings = door_settings(KORE_VOICE_BODY_TIMEOUT_SECONDS="1", TWILIO_ACCOUNT_SID="AC" + "0" * 32,
                             TWILIO_AUTH_TOKEN="t" * 32)
    async with running(settings, **runner_options(settings)) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        head = request("POST", path, b"Content-Type: application/json", b"X-Twilio-Signature: c2ln", body=b"x" * 1000)
        writer.write(head[: head.index(b"\r\n\r\n") + 4 + 10])  # the head and 10 bytes of 1,000
        assert (await client.get("/healthz")).status == 200
        answer = parse(await asyncio.wait_for(reader.read(), ANSWER_S))  # read() returns at the close
        writer.close()
        assert answer.status == 408
        assert answer.error() == {"code": "request_timeout", "message": "the request body did not arrive within 1 s"}


# --- the real `kore-voice serve` -----------------------------------------------------------------------


async def held_connections(port: int, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """`count` keep-alive connections, each answered once (so surely counted by the server), kept open."""
    held = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(KEEP_ALIVE_GET)
        assert b" 200 " in await asyncio.wait_for(reader.readuntil(b"\r\n"), ANSWER_S)
        held.append((reader, writer))
    return held


async def served_again(port: int) -> Answer:
    """The first answer that is not a refusal, asking again while the server lets go of old connections."""
    deadline = asyncio.get_running_loop().time() + ANSWER_S
    while True:
        answer = await exchange(port, request("GET", "/healthz"))
        if answer.status != 503 or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.05)


async def test_connections_over_the_cap_get_one_503_line_and_the_service_serves_once_they_close():
    async with serving(KORE_VOICE_MAX_CONNECTIONS="5", KORE_VOICE_HEADER_TIMEOUT_SECONDS="60") as service:
        held = await held_connections(service.port, 5)
        refused = await exchange(service.port, request("GET", "/healthz"))
        assert refused.status == 503
        assert refused.error() == {"code": "unavailable", "message": "too many open connections; retry"}
        for _, writer in held:
            writer.close()
        assert (await served_again(service.port)).status == 200
        metrics = await exchange(service.port, request("GET", "/metrics"))
        assert re.search(rb"^kore_voice_connections_refused_total [1-9]", metrics.body, re.M), metrics.body


async def test_running_out_of_file_descriptors_is_logged_once_not_per_attempt_and_service_recovers():
    async with serving(open_files=120, KORE_VOICE_HEADER_TIMEOUT_SECONDS="60") as service:
        clients = []
        with suppress(OSError):  # our own descriptors may run out first: enough are open by then
            for _ in range(200):
                reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
                writer.write(KEEP_ALIVE_GET)
                clients.append(writer)
        deadline = asyncio.get_running_loop().time() + ANSWER_S
        while not any("cannot accept connections" in line for line in service.log):
            assert asyncio.get_running_loop().time() < deadline, service.log[-5:]
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # asyncio retries accept() every second: three more failures at least
        for writer in clients:
            writer.close()
        assert (await served_again(service.port)).status == 200
        metrics = await exchange(service.port, request("GET", "/metrics"))
        failures = re.search(rb"^kore_voice_accept_failures_total (\S+)", metrics.body, re.M)
        assert failures and float(failures[1]) >= 3, metrics.body
    said = [line for line in service.log if "cannot accept connections" in line]
    assert len(said) == 1, said
    assert not any("Traceback" in line or "out of system resource" in line for line in service.log)

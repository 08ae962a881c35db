"""The doors' call core with a door that is not a WebSocket: a line-based TCP door on 127.0.0.1 (keys in,
one line per output event out) opened by `open_call` and run by `serve`, against the Kore.ai simulator.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from adapter.app_state import CALLS, CONVERSATION
from adapter.calls.events import HangUp, KeyIn, Listening, OutputEvent
from adapter.calls.info import CallInfo
from adapter.conversation.services import AudioSpec
from adapter.doors.live_call import serve
from adapter.doors.open_call import TooManyCalls, line_settings, open_call

from .conftest import door_settings, running

module_loop = pytest.mark.asyncio(loop_scope="module")

DOOR = "tcp-test"
BOT = {
    "name": "Test line",
    "welcome": [{"menu": {"text": "Hello.", "options": [{"title": "Goodbye", "payload": "bye"}]}}],
    "fallback": [{"say": "Sorry?"}],
    "intents": {"bye": {"keywords": ["bye"], "steps": [{"voice": {"text": "Bye.", "action": "hangup"}}]}},
}
TCP_AUDIO = AudioSpec(in_rate=8000, out_format="ulaw8k", live=True, inband_dtmf=False)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(bot) -> AsyncIterator[TestClient]:
    async with running(door_settings(**bot.env(), KORE_VOICE_MAX_CALLS="2")) as client:
        yield client


class TcpDoor:
    """A door over plain TCP: each line the caller sends is keys; each output event goes back as a line
    naming it. `serves` holds every call's `serve` task; `users` each call's id, in order."""

    def __init__(self, service: TestClient) -> None:
        self.app = service.app
        self.serves: list[asyncio.Task[None]] = []
        self.users: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.serves.append(asyncio.current_task())  # type: ignore[arg-type]
        conversation = open_call(self.app, CallInfo.new(DOOR, "+15551230000", "+15559870000"), TCP_AUDIO)
        self.users.append(conversation.call.user_id)

        async def feed() -> None:
            while line := await reader.readline():
                for key in line.decode().strip():
                    conversation.send(KeyIn(key))

        async def play(event: OutputEvent) -> None:
            writer.write(f"{type(event).__name__}\n".encode())
            await writer.drain()

        async def close() -> None:
            writer.close()
            await writer.wait_closed()

        await serve(self.app, conversation, feed(), play, close)


@pytest_asyncio.fixture(loop_scope="module")
async def door(service) -> AsyncIterator[tuple[TcpDoor, int]]:
    tcp = TcpDoor(service)
    server = await asyncio.start_server(tcp.handle, "127.0.0.1", 0)
    async with server:
        yield tcp, server.sockets[0].getsockname()[1]


async def until(reader: asyncio.StreamReader, name: str) -> list[str]:
    """The event lines up to and including `name`."""
    seen: list[str] = []
    async with asyncio.timeout(20):
        while not seen or seen[-1] != name:
            line = await reader.readline()
            assert line, f"the door closed after {seen}"
            seen.append(line.decode().strip())
    return seen


@module_loop
async def test_when_the_caller_goes_the_call_is_hung_up_once(door, bot):
    tcp, port = door
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert "Play" in await until(reader, "Listening")
    writer.close()  # the caller hangs up
    await asyncio.wait_for(tcp.serves[0], 20)
    assert bot.closures(tcp.users[0]) == 1


@module_loop
async def test_when_the_bot_ends_the_call_the_transport_is_closed_and_the_call_hung_up_once(door, bot, service):
    tcp, port = door
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await until(reader, "Listening")
    writer.write(b"1\n")  # the menu's "Goodbye": the bot hangs up
    assert await until(reader, HangUp.__name__)
    async with asyncio.timeout(20):
        assert await reader.read() == b""  # the door closed the socket, unasked
    await asyncio.wait_for(tcp.serves[0], 20)
    assert bot.closures(tcp.users[0]) == 1 and bot.texts_from(tcp.users[0]) == ["bye"]
    assert service.app[CALLS].get(tcp.users[0]) is None
    counted = await (await service.get("/metrics")).text()
    assert f'kore_voice_turns_total{{door="{DOOR}",input="dtmf"}} 1.0' in counted  # every event went by metrics
    writer.close()


@module_loop
async def test_open_call_refuses_a_call_over_the_limit_and_starts_nothing(service, bot):
    app = service.app
    opened = [open_call(app, CallInfo.new(DOOR, "+1555", "+1666"), TCP_AUDIO) for _ in range(2)]
    refused = CallInfo.new(DOOR, "+1555", "+1777")
    with pytest.raises(TooManyCalls):
        open_call(app, refused, TCP_AUDIO)
    assert app[CALLS].get(refused.user_id) is None and not bot.bodies(refused.user_id)
    for conversation in opened:
        async for event in conversation.events():  # its welcome, then the caller goes
            if isinstance(event, Listening):
                break
        await conversation.hang_up()
    assert [bot.closures(c.call.user_id) for c in opened] == [1, 1]


@module_loop
async def test_the_one_moment_filler_is_for_live_lines_only(service):
    settings = service.app[CONVERSATION]
    assert line_settings(settings, TCP_AUDIO) == settings
    request_response = line_settings(settings, dataclasses.replace(TCP_AUDIO, live=False))
    assert request_response.filler_after_s > settings.bot_giveup_s
    assert dataclasses.replace(request_response, filler_after_s=settings.filler_after_s) == settings

"""Whole AudioSocket calls in-process: the service's TCP listener on 127.0.0.1, and `AudioSocketPeer`
playing Asterisk over real TCP in real time (the UUID first, then 20 ms slin frames for the whole call,
keys as 0x03 frames, 0x00 or EOF to hang up).

The bot is the Kore.ai simulator playing `BOT` (the shared `bot` fixture); caller speech is espeak-ng
(`en-us+f2`) as 8 kHz 16-bit PCM, recognised by PocketSphinx in the service's worker processes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from simulated_bot import SimulatedBot

from adapter.app_state import CALLS
from adapter.doors.audiosocket.door import SERVER
from adapter.doors.audiosocket.frames import Kind, encode
from adapter.doors.pacer import FRAME_S, LEAD_S
from adapter.testing.audiosocket_peer import AudioSocketPeer

from ..conftest import (
    API_KEY,
    LEAD,
    LINE_SLIN_8K,
    assert_paced,
    door_settings,
    joined,
    line_bot,
    line_speech,
    rendered,
    running,
)

module_loop = pytest.mark.asyncio(loop_scope="module")

BOT = line_bot(({"title": "My account", "payload": "account"},), {"account": {"keywords": ["account"], "steps": [
    {"ask": {"slot": "number", "say": "Enter it.", "speech": False, "digits": {"num": 4}, "pattern": r"\d{4}",
             "retry": "Again."}},
    {"say": "Account {number}."}]}})
WELCOME = ("Hello. For Check balance, press 1. For Talk to an agent, press 2. For Goodbye, press 3. "
           "For My account, press 4.")
OUT = "slin8k"  # the prompts' format on this door
AUTH = {"Authorization": f"Bearer {API_KEY}"}


# --- the service, the bot, the caller -------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(bot) -> AsyncIterator[TestClient]:
    settings = door_settings(**bot.env(), KORE_VOICE_AUDIOSOCKET_PORT="0", KORE_VOICE_API_KEY=API_KEY)
    async with running(settings) as client:
        yield client


def listener(service: TestClient) -> tuple[str, int]:
    host, port = service.app[SERVER].sockets[0].getsockname()[:2]
    return host, port


def asterisk(service: TestClient, call: uuid.UUID | None = None, **peer: Any) -> AudioSocketPeer:
    return AudioSocketPeer(*listener(service), call, **peer)


@pytest.fixture(scope="module")
def said(media: Path) -> Callable[[str], bytes]:
    """`said("check balance")`: espeak-ng as Asterisk hands it over, 16-bit 8 kHz mono PCM."""
    return lambda text: line_speech(media, text, LINE_SLIN_8K)


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def prompts(service) -> None:
    for text in (WELCOME, "You have ten dollars.", "Hold on.", "Bye."):
        await rendered(service, text, OUT)


def user_id(bot: SimulatedBot, call: uuid.UUID) -> str:
    """The bot's user id for the call: `audiosocket-<uuid hex>-…`."""
    [uid] = {b["from"]["id"] for b in bot.bodies() if b.get("from", {}).get("id", "").startswith(
        f"audiosocket-{call.hex}-")}
    return uid


async def state(service: TestClient, call: uuid.UUID) -> dict[str, Any]:
    resp = await service.get(f"/v1/audiosocket/{call}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def ended(service: TestClient, call: uuid.UUID) -> dict[str, Any]:
    """The call's state once its connection has been let go of."""
    async with asyncio.timeout(10):
        while (found := await state(service, call))["state"] != "ended":
            await asyncio.sleep(0.01)
    return found


# --- whole calls ------------------------------------------------------------------------------------------


@module_loop
async def test_the_welcome_is_paced_and_a_spoken_answer_is_heard(service, bot, said):
    async with asterisk(service) as peer:
        welcome = await rendered(service, WELCOME, OUT)
        await peer.until(lambda p: len(joined(p.audio())) >= len(welcome), 20)
        heard = peer.audio()
        assert joined(heard) == welcome and len(heard) * FRAME_S > 4.0
        assert np.abs(np.frombuffer(welcome, "<i2")).max() > 5000  # speech, not silence
        assert_paced(heard)
        await asyncio.sleep(LEAD_S + 0.1)  # the welcome has played out at the far end: the caller answers

        spoken = await peer.say(said("check balance"))
        reply = await rendered(service, "You have ten dollars.", OUT)
        await peer.until(lambda p: len(joined(p.audio_since(spoken))) >= len(reply), 20)
        assert joined(peer.audio_since(spoken)) == reply
        assert_paced(peer.audio_since(spoken))
        assert await state(service, peer.call) == {"uuid": str(peer.call), "state": "live", "action": None,
                                                   "transfer_to": None}
        await peer.hang_up()
        await peer.until(lambda p: p.closed, 10)
    assert peer.hung_up and peer.problems == []  # 0x10 frames of exactly 320 bytes, then 0x00
    uid = user_id(bot, peer.call)
    assert bot.texts_from(uid) == ["balance"]
    assert (await ended(service, peer.call))["action"] is None  # the caller hung up
    assert bot.closures(uid) == 1 and service.app[CALLS].get(uid) is None
    first = bot.bodies(uid)[0]
    assert first["message"]["val"] == "ON_CONNECT" and "ani" not in first.get("customData", {})


@module_loop
async def test_keys_choose_from_the_menu_and_enter_digits(service, bot):
    async with asterisk(service) as peer:
        await peer.until(lambda p: len(p.audio()) > 10)
        await peer.dtmf("4")
        await peer.until(lambda p: len(bot.texts_from(user_id(bot, p.call))) == 1, 20)
        for key in "1234":
            await peer.dtmf(key)
        uid = user_id(bot, peer.call)
        await peer.until(lambda p: len(bot.texts_from(uid)) == 2, 20)
        await peer.end()  # the caller hangs up as Asterisk does: EOF, no frame
        await peer.until(lambda p: p.closed, 10)
    assert bot.texts_from(uid) == ["account", "1234"]
    assert (await ended(service, peer.call))["action"] is None
    assert bot.closures(uid) == 1


@module_loop
async def test_speech_over_the_welcome_barges_in_and_a_transfer_is_there_for_the_dialplan(service, bot, said):
    async with asterisk(service) as peer:
        await peer.until(lambda p: len(p.audio()) > 10)
        spoken = await peer.say(said("talk to an agent"))
        await peer.until(lambda p: p.closed, 20)
    welcome, goodbye = await rendered(service, WELCOME, OUT), await rendered(service, "Hold on.", OUT)
    assert peer.hung_up and peer.problems == []
    cut = [a for a in peer.audio() if a.at <= spoken]
    assert len(joined(cut)) < len(welcome) / 2  # the welcome stopped when the caller spoke
    assert joined(peer.audio()).endswith(goodbye)
    assert peer.timeline[-1].kind == Kind.HANGUP and peer.timeline[-1].at >= peer.audio()[-1].at
    assert await ended(service, peer.call) == {"uuid": str(peer.call), "state": "ended", "action": "transfer",
                                               "transfer_to": "sip:agent@example.com"}
    assert bot.texts_from(user_id(bot, peer.call)) == ["agent"]


@module_loop
async def test_when_the_bot_hangs_up_the_goodbye_plays_then_we_send_0x00_and_close(service, bot):
    async with asterisk(service) as peer:
        await peer.until(lambda p: len(p.audio()) > 10)
        await peer.dtmf("3")
        pressed = asyncio.get_running_loop().time()
        await peer.until(lambda p: p.closed, 20)
    bye = await rendered(service, "Bye.", OUT)
    assert peer.hung_up and peer.problems == [] and joined(peer.audio()).endswith(bye)
    bye_frames = len(bye) // 320
    goodbye = peer.audio()[-bye_frames:]
    assert_paced(goodbye)
    # 0x00 once the goodbye's play time is over, not as soon as its last frame went
    assert peer.timeline[-1].at >= goodbye[0].at + (bye_frames - LEAD - 2) * FRAME_S
    assert peer.timeline[-1].at > pressed
    assert (await ended(service, peer.call))["action"] == "hangup"
    assert bot.closures(user_id(bot, peer.call)) == 1


# --- registration ------------------------------------------------------------------------------------------


@module_loop
async def test_numbers_registered_before_the_call_reach_the_bot(service, bot):
    call = uuid.uuid4()
    body = {"uuid": str(call), "from": "+15551230000", "to": "+15559870000"}
    assert (await service.post("/v1/audiosocket/calls", json=body)).status == 401  # the API key guards it
    resp = await service.post("/v1/audiosocket/calls", json=body, headers=AUTH)
    assert (resp.status, await resp.json()) == (201, body)
    assert (await state(service, call))["state"] == "registered"
    again = await service.post("/v1/audiosocket/calls", json=body, headers=AUTH)
    assert again.status == 409 and (await again.json())["error"]["code"] == "conflict"
    async with asterisk(service, call) as peer:
        await peer.until(lambda p: len(p.audio()) > 0, 20)
        await peer.hang_up()
        await peer.until(lambda p: p.closed, 10)
    first = bot.bodies(user_id(bot, call))[0]
    assert (first["customData"]["ani"], first["customData"]["dnis"]) == ("+15551230000", "+15559870000")


@module_loop
@pytest.mark.parametrize(("body", "status", "message"), [
    ({"from": "+1"}, 400, '"uuid" must be a UUID string such as 40325ec2-5efd-4bd3-805f-53576e581d13'),
    ({"uuid": "not-a-uuid"}, 400, '"uuid" must be a UUID string such as 40325ec2-5efd-4bd3-805f-53576e581d13'),
    ({"uuid": str(uuid.uuid4()), "from": 5}, 400,
     '"from" must be a number or SIP URI of at most 128 printable characters'),
    ([1], 400, "the body must be a JSON object"),
    ({"uuid": str(uuid.uuid4()), "to": "x" * 5000}, 413, "a registration is at most 4096 bytes"),
])
async def test_a_bad_registration_is_refused_with_one_json_line(service, body, status, message):
    resp = await service.post("/v1/audiosocket/calls", json=body, headers=AUTH)
    assert (resp.status, await resp.json()) == (status, {"error": {"code": {400: "bad_request", 413: "too_large"}[
        status], "message": message}})


@module_loop
async def test_an_unknown_call_is_404(service):
    resp = await service.get(f"/v1/audiosocket/{uuid.uuid4()}", headers=AUTH)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert (await service.get("/v1/audiosocket/nope", headers=AUTH)).status == 400


# --- bad input: that connection closes, other calls go on --------------------------------------------------


@module_loop
@pytest.mark.parametrize(("first", "after_uuid", "reason"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None, "unknown frame kind 0x47"),
    (None, encode(0x07, b"hi"), "unknown frame kind 0x07"),
    (None, b"\x10\xff\xff", "audio frame of 65535 bytes (whole 16-bit samples, 2 to 16000 bytes)"),
    (encode(Kind.AUDIO, bytes(320)), None, "audio before the call's UUID"),
    (None, encode(Kind.UUID, uuid.uuid4().bytes), "a second UUID frame"),
    (None, encode(0x12, bytes(640)), "audio kind 0x12 (16000 Hz) is not enabled"),
])
async def test_bad_input_closes_that_connection_with_a_logged_reason(service, bot, caplog, first, after_uuid,
                                                                     reason):
    async with asterisk(service) as healthy:
        await healthy.until(lambda p: len(p.audio()) > 0, 20)
        with caplog.at_level(logging.WARNING, logger="adapter.doors.audiosocket.door"):
            async with asterisk(service, send_uuid=first is None, talk=False) as broken:
                if after_uuid is not None:
                    await broken.until(lambda p: len(p.audio()) > 0, 20)  # its call is up
                await broken.send(first if first is not None else after_uuid)
                await broken.until(lambda p: p.closed, 10)
        assert broken.hung_up and broken.problems == []
        assert any(reason in r.getMessage() and "closing" in r.getMessage() for r in caplog.records), caplog.text
        if after_uuid is not None:
            assert (await ended(service, broken.call))["action"] is None
            assert bot.closures(user_id(bot, broken.call)) == 1
        else:
            assert not [b for b in bot.bodies() if b.get("from", {}).get("id", "").startswith(
                f"audiosocket-{broken.call.hex}")]
        await healthy.dtmf("1")  # the other call goes on
        await healthy.until(lambda p: bot.texts_from(user_id(bot, p.call)) == ["balance"], 20)
        await healthy.hang_up()
        await healthy.until(lambda p: p.closed, 10)
    assert healthy.problems == []


@module_loop
async def test_a_second_connection_with_a_live_uuid_is_refused(service, caplog):
    async with asterisk(service) as first:
        await first.until(lambda p: len(p.audio()) > 0, 20)
        with caplog.at_level(logging.WARNING, logger="adapter.doors.audiosocket.door"):
            async with asterisk(service, first.call, talk=False) as second:
                await second.until(lambda p: p.closed, 10)
        assert second.audio() == [] and not first.closed
    assert f"call {first.call} is already connected" in caplog.text


@module_loop
async def test_an_error_frame_from_asterisk_ends_the_call(service, bot, caplog):
    with caplog.at_level(logging.INFO, logger="adapter.doors.audiosocket.door"):
        async with asterisk(service) as peer:
            await peer.until(lambda p: len(p.audio()) > 0, 20)
            await peer.send(encode(Kind.ERROR, b"\x02"))
            await peer.until(lambda p: p.closed, 10)
    assert peer.hung_up and (await ended(service, peer.call))["action"] is None
    assert bot.closures(user_id(bot, peer.call)) == 1
    assert "Asterisk reports an error: 0x02 (frame forwarding error)" in caplog.text

"""Whole Media Streams calls in-process: `/twilio/voice` signed by the official library answers
`<Connect><Stream>`, then `MediaPeer` plays Twilio on the socket in real time (caller audio in 20 ms
frames on a monotonic schedule, our audio "played" from a buffer, marks echoed once played).

The bot is the Kore.ai simulator with a short script, so prompts are short; caller speech is espeak-ng
(`en-us+f2`) as μ-law 8 kHz, recognised by PocketSphinx in the service's worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, make_mocked_request
from twilio.twiml.voice_response import VoiceResponse

from adapter.app_state import CALLS, CONVERSATION
from adapter.audio import g711
from adapter.calls.clock import SystemClock
from adapter.doors.pacer import FRAME_S
from adapter.doors.twilio import media as twilio_media
from adapter.doors.twilio.call_sid import user_id
from adapter.doors.twilio.media import (
    PATH,
    STREAM_TOKENS,
    connect_response,
)
from adapter.doors.twilio.stream_token import StreamTokens
from adapter.doors.twilio.twiml import dial, goodbye, hang_up
from adapter.server import create_app
from adapter.testing.twilio_media import MediaPeer

from ..conftest import LINE_ULAW_8K, assert_paced, joined, line_bot, line_speech, rendered, running
from .conftest import (
    CALLED,
    CALLER,
    TOKEN,
    TwilioPeer,
    call_params,
    new_call_sid,
    twilio_settings,
)

module_loop = pytest.mark.asyncio(loop_scope="module")

MEDIA_MODE = {"KORE_VOICE_TWILIO_MODE": "media-streams"}
OUT = "ulaw8k"  # the prompts' format on this door
BOT = line_bot()
WELCOME = "Hello. For Check balance, press 1. For Talk to an agent, press 2. For Goodbye, press 3."
BALANCE = "You have ten dollars."


# --- the service, the bot, the caller -------------------------------------------------------------------


@pytest.fixture(scope="module")
def said(media: Path) -> Callable[[str], bytes]:
    """`said("check balance")`: espeak-ng as a phone line carries it, raw μ-law 8 kHz."""
    return lambda text: line_speech(media, text, LINE_ULAW_8K)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(bot) -> AsyncIterator[TestClient]:
    settings = twilio_settings(**bot.env(), **MEDIA_MODE)
    async with running(settings) as client:
        yield client


async def connect(service: TestClient, sid: str) -> tuple[str, dict[str, str]]:
    """What Twilio does when the call comes in: the voice webhook, then the stream its TwiML names."""
    resp = await TwilioPeer(service).post("/twilio/voice", call_params(sid))
    assert resp.status == 200, await resp.text()
    connect_verb = ET.fromstring(await resp.text()).find("./Connect")
    assert connect_verb is not None and connect_verb.get("action") == str(service.make_url("/twilio/after-stream"))
    stream = connect_verb.find("./Stream")
    assert stream is not None and stream.get("url") == "ws" + str(service.make_url(PATH)).removeprefix("http")
    parameters = {p.get("name"): p.get("value") for p in stream.iter("Parameter")}
    return stream.get("url"), parameters  # type: ignore[return-value]


async def call(service: TestClient, sid: str | None = None, **peer: Any) -> MediaPeer:
    sid = sid or new_call_sid()
    url, parameters = await connect(service, sid)
    return MediaPeer(service.session, url, sid, parameters, **peer)


# --- whole calls ------------------------------------------------------------------------------------------


@module_loop
async def test_a_caller_hears_the_welcome_answers_by_voice_and_hangs_up(service, bot, said):
    async with await call(service) as peer:
        await peer.until(lambda p: p.marks, 20)
        [(mark, welcome)] = peer.prompts()
        assert mark == "prompt-1"
        assert joined(welcome) == await rendered(service, WELCOME, OUT)
        assert len(welcome) * FRAME_S > 2.0
        assert np.abs(np.frombuffer(g711.ulaw_to_pcm16(joined(welcome)), "<i2")).max() > 5000  # not silence
        assert_paced(welcome)

        await peer.until(lambda p: p.echoed == ["prompt-1"])  # played: the caller answers
        spoken = await peer.say(said("check balance"))
        await peer.until(lambda p: len(p.marks) == 2, 20)
        mark, reply = peer.prompts()[1]
        assert mark == "prompt-2" and reply[0].at > spoken
        assert joined(reply) == await rendered(service, BALANCE, OUT)
        assert_paced(reply)

        await peer.stop()
        await peer.until(lambda p: p.closed, 10)
    assert (peer.close_code, peer.problems) == (1000, [])
    assert peer.kinds() == ["media"] * len(welcome) + ["mark"] + ["media"] * len(reply) + ["mark"]
    uid = user_id(peer.call_sid)
    assert bot.texts_from(uid) == ["balance"]
    assert bot.closures(uid) == 1
    assert service.app[CALLS].get(uid) is None
    first = bot.bodies(uid)[0]
    assert (first["customData"]["ani"], first["customData"]["dnis"]) == (CALLER, CALLED)


@module_loop
async def test_a_key_over_the_welcome_clears_it_and_the_reply_follows(service, bot):
    async with await call(service) as peer:
        await peer.until(lambda p: p.frames > 20)
        await peer.dtmf("1")
        await peer.until(lambda p: len(p.marks) == 1, 20)
        # Twilio echoes the marks of audio a clear dropped; one that comes late changes nothing.
        await peer.send({"event": "mark", "streamSid": peer.stream_sid, "mark": {"name": "prompt-1"}})
        await peer.until(lambda p: p.echoed == ["prompt-2"], 10)
    clear = peer.kinds().index("clear")
    assert "mark" not in peer.kinds()[:clear]  # the welcome's mark was still ours to send: dropped
    [(mark, reply)] = peer.prompts()
    assert mark == "prompt-2" and joined(reply) == await rendered(service, BALANCE, OUT)
    assert bot.texts_from(user_id(peer.call_sid)) == ["balance"]
    assert peer.problems == []


@module_loop
async def test_speech_over_the_welcome_barges_in_and_a_transfer_dials_after_the_stream(service, said):
    async with await call(service) as peer:
        await peer.until(lambda p: p.frames > 10)
        await peer.say(said("talk to an agent"))
        await peer.until(lambda p: p.closed, 20)
    assert "clear" in peer.kinds()
    [(mark, goodbye_audio)] = peer.prompts()
    assert mark == "prompt-2" and joined(goodbye_audio) == await rendered(service, "Hold on.", OUT)
    # The socket closed only once the goodbye had played (an echo is only sent on an open socket).
    assert peer.echoed == ["prompt-2"] and peer.close_code == 1000

    twilio = TwilioPeer(service)
    after = call_params(peer.call_sid, CallStatus="in-progress")
    assert (await twilio.post("/twilio/after-stream", after, signature="")).status == 403
    resp = await twilio.post("/twilio/after-stream", after)
    expected = VoiceResponse()
    expected.append(dial("sip:agent@example.com"))
    assert (resp.status, await resp.text()) == (200, str(expected))
    again = await twilio.post("/twilio/after-stream", after)
    assert await again.text() == str(hang_up())


@module_loop
async def test_when_the_bot_hangs_up_the_stream_closes_after_the_goodbye_and_twilio_hangs_up(service, bot):
    async with await call(service) as peer:
        await peer.until(lambda p: p.frames > 10)
        await peer.dtmf("3")
        await peer.until(lambda p: p.closed, 20)
    [(mark, bye)] = peer.prompts()
    assert mark == "prompt-2" and joined(bye) == await rendered(service, "Bye.", OUT)
    assert peer.echoed == ["prompt-2"] and peer.close_code == 1000
    assert bot.closures(user_id(peer.call_sid)) == 1
    resp = await TwilioPeer(service).post("/twilio/after-stream", call_params(peer.call_sid))
    assert await resp.text() == str(hang_up())


# --- the socket is Twilio's only ----------------------------------------------------------------------------


@module_loop
async def test_a_stream_without_a_good_token_closes_before_any_conversation(service, bot):
    used_sid = new_call_sid()
    url, used = await connect(service, used_sid)
    clock = SystemClock()  # the service's: an expiry is wall time
    async with MediaPeer(service.session, url, used_sid, used) as healthy:
        cases = {
            "the stream has no token (customParameters.token)": (new_call_sid(), {}),
            "the stream token's signature does not match (forged, or another Auth Token)":
                (sid := new_call_sid(), {"token": StreamTokens("not our token", clock).issue(sid, CALLER, CALLED)}),
            "the stream token expired 1 s ago":
                (sid := new_call_sid(), {"token": StreamTokens(TOKEN, clock, ttl_s=-1).issue(sid, CALLER, CALLED)}),
            "the stream token was already used": (used_sid, used),
            f"the stream token is for call {used_sid}, not {(other := new_call_sid())}":
                (other, {"token": StreamTokens(TOKEN, clock).issue(used_sid, CALLER, CALLED)}),
        }
        for reason, (sid, parameters) in cases.items():
            async with MediaPeer(service.session, str(service.make_url(PATH)), sid, parameters,
                                 stream_sid="MZ" + "f" * 32) as refused:
                await refused.until(lambda p: p.closed, 10)
            assert (refused.close_code, refused.close_reason, refused.timeline) == (1008, reason, []), reason
            if sid != used_sid:
                assert not bot.bodies(user_id(sid))
        await healthy.dtmf("1")  # the call that had its token goes on
        await healthy.until(lambda p: p.marks == ["prompt-2"], 20)
    assert healthy.problems == []


@module_loop
async def test_a_malformed_message_closes_its_stream_and_hangs_up_its_call_only(service, bot):
    bad: list[tuple[Any, int | tuple[int, ...], str]] = [
        ("{oops", 1008, "unreadable message: the body is not valid JSON: Expecting property name enclosed in double "
                        "quotes (line 1 column 2)"),
        ("[" * 5000 + "]" * 5000, 1008, "unreadable message: the JSON body nests deeper than 16 levels"),
        (json.dumps({"media": {}}), 1008, "a message must name its event"),
        ({"event": "media", "media": {"payload": "not base64!"}}, 1008, "media.payload is not base64"),
        ({"event": "media", "streamSid": "MZother", "media": {"payload": "AAAA"}}, 1008,
         "media for another stream ('MZother')"),
        ({"event": "media", "media": {"payload": "A" * 12000}}, 1009, "a media payload is at most 8000 bytes"),
        (" " * 20000, 1009, "a message is at most 16384 characters"),
        # over the socket's own limit: aiohttp closes it, and may reset the connection with our bytes unread
        (" " * 100_000, (1009, 1006), ""),
        (b"\x7f\xff\x7f\xff", 1003, "a binary frame: Media Streams messages are JSON text"),
    ]
    async with await call(service) as healthy:
        await healthy.until(lambda p: p.frames > 0)
        for message, code, reason in bad:
            async with await call(service) as broken:
                await broken.until(lambda p: p.frames > 0)  # its call is up: the welcome plays
                uid = user_id(broken.call_sid)
                conversation = service.app[CALLS].get(uid)
                assert conversation is not None
                if isinstance(message, dict):
                    message = json.dumps({"streamSid": broken.stream_sid, **message})
                await (broken.ws.send_bytes if isinstance(message, bytes) else broken.ws.send_str)(message)
                await broken.until(lambda p: p.closed, 10)
            assert broken.close_code in (code if isinstance(code, tuple) else (code,)) and broken.close_reason == reason
            # the hang-up runs after the close handshake: judge the call once its task has ended
            # (start() hands back the running call's task; the registry lets go of it as that task ends)
            await asyncio.wait_for(asyncio.shield(conversation.start()), 20)
            assert bot.closures(uid) == 1 and service.app[CALLS].get(uid) is None

        await healthy.dtmf("1")
        await healthy.until(lambda p: p.marks == ["prompt-2"], 20)
    assert healthy.problems == [] and not healthy.closed


@module_loop
async def test_unknown_events_and_keys_are_ignored_and_logged_once(service, bot, caplog):
    """Twilio adds events, and a key we do not know is no reason to hang up: the call goes on."""
    with caplog.at_level(logging.WARNING, logger="adapter.doors.twilio.media"):
        async with await call(service) as peer:
            await peer.until(lambda p: p.frames > 0)
            for _ in range(3):
                await peer.send({"event": "dance", "streamSid": peer.stream_sid, "dance": {"step": 1}})
                await peer.send({"event": "dtmf", "streamSid": peer.stream_sid, "dtmf": {"digit": "A"}})
            await peer.dtmf("1")
            await peer.until(lambda p: p.marks == ["prompt-2"], 20)
    assert peer.problems == [] and bot.texts_from(user_id(peer.call_sid)) == ["balance"]
    ignored = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(ignored) == 2, ignored
    assert "ignoring event 'dance'" in ignored[0] and "ignoring dtmf digit: dtmf digit 'A'" in ignored[1]


@module_loop
async def test_a_socket_that_never_starts_is_closed_after_the_handshake_timeout(service, monkeypatch):
    monkeypatch.setattr(twilio_media, "HANDSHAKE_TIMEOUT_S", 0.5)
    ws = await service.ws_connect(PATH)

    async def chatter() -> None:  # what a hostile client does to hold a socket: never `start`
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not ws.closed:
                await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
                await asyncio.sleep(0.02)

    sending = asyncio.create_task(chatter())
    msg = await ws.receive(timeout=10)
    await sending
    assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1008, "no start within 0.5 s")


@module_loop
async def test_audio_before_start_closes_the_socket(service):
    ws = await service.ws_connect(PATH)
    await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    await ws.send_json({"event": "media", "streamSid": "MZ1", "media": {"payload": "AAAA"}})
    msg = await ws.receive(timeout=10)
    assert (msg.data, msg.extra) == (1008, "media before start")


@module_loop
async def test_a_silent_stream_is_dead_and_its_call_is_hung_up(service, bot, monkeypatch):
    monkeypatch.setattr(twilio_media, "IDLE_TIMEOUT_S", 0.5)  # Twilio sends audio every 20 ms
    sid = new_call_sid()
    url, parameters = await connect(service, sid)
    ws = await service.session.ws_connect(url)
    await ws.send_json({"event": "start", "streamSid": "MZ1", "start": {
        "streamSid": "MZ1", "callSid": sid, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                            "channels": 1}, "customParameters": parameters}})
    while (msg := await ws.receive(timeout=10)).type == WSMsgType.TEXT:
        pass  # the welcome
    assert (msg.data, msg.extra) == (1001, "no message for 0.5 s")
    for _ in range(100):
        if bot.closures(user_id(sid)):
            break
        await asyncio.sleep(0.02)
    assert bot.closures(user_id(sid)) == 1


@module_loop
async def test_a_full_service_turns_streams_away_politely():
    async with running(twilio_settings(KORE_VOICE_MAX_CALLS="1", KORE_VOICE_ASR_PROCESSES="0", **MEDIA_MODE)) as small:
        async with await call(small) as first:
            await first.until(lambda p: p.frames > 0, 20)
            async with await call(small) as second:
                await second.until(lambda p: p.closed, 10)
        assert (second.close_code, second.close_reason) == (
            1013, "the service is at its limit of 1 calls; try again later")
        resp = await TwilioPeer(small).post("/twilio/after-stream", call_params(second.call_sid))
        assert await resp.text() == str(goodbye(small.app[CONVERSATION].phrases.unavailable))


# --- the TwiML ------------------------------------------------------------------------------------------------


def voice_request(app: web.Application, **headers: str) -> web.Request:
    return make_mocked_request("POST", "/twilio/voice", headers={"Host": "10.0.0.5:8080", **headers}, app=app)


def expected_connect(base: str, ws_base: str) -> str:
    response = VoiceResponse()
    stream = response.connect(action=f"{base}/twilio/after-stream").stream(url=f"{ws_base}/twilio/media")
    stream.parameter(name="token", value="TOKEN")
    return str(response)


def with_token_named(xml: str, app: web.Application, sid: str) -> str:
    """The TwiML with its token checked (for this call, its From and To) and replaced by TOKEN."""
    token = ET.fromstring(xml).find("./Connect/Stream/Parameter").get("value", "")  # type: ignore[union-attr]
    grant = asyncio.run(app[STREAM_TOKENS].redeem(token, sid))
    assert (grant.caller, grant.called) == (CALLER, CALLED)
    return xml.replace(token, "TOKEN")


def test_connect_points_the_stream_at_the_public_url_over_wss():
    app = create_app(twilio_settings(KORE_VOICE_PUBLIC_URL="https://voice.example.com/kv", **MEDIA_MODE))
    sid = new_call_sid()
    xml = str(connect_response(voice_request(app), call_params(sid)))
    assert with_token_named(xml, app, sid) == expected_connect("https://voice.example.com/kv",
                                                               "wss://voice.example.com/kv")


def test_connect_behind_a_trusted_proxy_uses_its_headers_and_otherwise_the_request():
    app = create_app(twilio_settings(KORE_VOICE_TRUST_FORWARDED="true", **MEDIA_MODE))
    sid = new_call_sid()
    request = voice_request(app, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "proxy.example.com"})
    xml = str(connect_response(request, call_params(sid)))
    assert with_token_named(xml, app, sid) == expected_connect("https://proxy.example.com", "wss://proxy.example.com")
    plain = create_app(twilio_settings(**MEDIA_MODE))
    xml = str(connect_response(voice_request(plain), call_params(sid)))
    assert with_token_named(xml, plain, sid) == expected_connect("http://10.0.0.5:8080", "ws://10.0.0.5:8080")


def test_twiml_mode_has_no_stream_to_open():
    app = create_app(twilio_settings())
    assert PATH not in {route.resource.canonical for route in app.router.routes() if route.resource}

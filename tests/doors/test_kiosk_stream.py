"""The kiosk stream door: its pure parsing, then whole calls over a real WebSocket, in-process, against the
demo bot served by the Kore.ai simulator (which records the `SESSION_CLOSURE` a closed socket sends).

Caller audio is espeak-ng (`en-us+f2`) and sox tones, streamed in 20 ms frames in both stream formats.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.api_errors import ApiError
from adapter.app_state import CALLS, SERVICES
from adapter.audio import g711
from adapter.calls.events import CallerHungUp, KeyIn, PlaybackDone
from adapter.doors import kiosk_stream
from adapter.doors.kiosk_stream import (
    MAX_AUDIO_FRAME_BYTES,
    STREAM_FORMATS,
    caller_pcm,
    parse_control,
    parse_start,
    parse_text,
)

from .conftest import API_KEY, door_settings, run, running

module_loop = pytest.mark.asyncio(loop_scope="module")

MENU = [{"digit": "1", "label": "Check balance"}, {"digit": "2", "label": "Transfer money"},
        {"digit": "3", "label": "Talk to an agent"}]
START = {"type": "start", "from": "+15551230000", "to": "+15559870000"}
FRAME_S = 0.02


# --- parsing, no sockets ---------------------------------------------------------------------------


def test_start_names_the_callers_format():
    start = parse_start({**START, "format": "ulaw", "rate": 8000}, "en")
    assert (start.caller, start.called, start.format.name, start.format.out_format) == (
        "+15551230000", "+15559870000", "ulaw", "ulaw8k")
    assert parse_start({**START, "format": "l16"}, "en").format.rate == 16000


@pytest.mark.parametrize(("message", "reason"), [
    ({"type": "dtmf", "digit": "1"}, 'send {"type": "start", "from", "to", "format"} first'),
    ({**START, "format": "opus"}, '"format" must be one of l16, ulaw'),
    ({**START, "format": "l16", "rate": 8000}, 'l16 audio is at 16000 Hz; "rate" must be 16000'),
    ({"type": "start", "to": "+1", "format": "l16"}, '"from" must be a non-empty string (a number or SIP URI)'),
])
def test_a_bad_start_says_why(message, reason):
    with pytest.raises(ApiError) as err:
        parse_start(message, "en")
    assert err.value.message == reason


def test_control_frames_become_conversation_events():
    assert parse_control({"type": "dtmf", "digit": "5"}) == [KeyIn("5")]
    assert parse_control({"dtmf": "1#"}) == [KeyIn("1"), KeyIn("#")]
    assert parse_control({"type": "played", "id": 3}) == [PlaybackDone(3)]
    assert parse_control({"type": "stop"}) == [CallerHungUp()]
    for bad in ({"type": "played", "id": "3"}, {"type": "dtmf", "digit": "x"}, {"type": "hello"}, {}, START):
        with pytest.raises(ApiError):
            parse_control(bad)


def test_text_frames_are_json_objects():
    assert parse_text('{"type": "stop"}') == {"type": "stop"}
    for bad in ("{", "[1]", " " * 5000):
        with pytest.raises(ApiError):
            parse_text(bad)


def test_audio_frames_become_pcm():
    assert caller_pcm(b"\x01\x00\xfe\xff", STREAM_FORMATS["l16"]) == b"\x01\x00\xfe\xff"
    assert caller_pcm(b"\xff\x7f", STREAM_FORMATS["ulaw"]) == g711.ulaw_to_pcm16(b"\xff\x7f")
    for data, fmt in ((b"\x00" * 3, "l16"), (b"\x00" * (MAX_AUDIO_FRAME_BYTES + 2), "l16")):
        with pytest.raises(ApiError):
            caller_pcm(data, STREAM_FORMATS[fmt])


# --- whole calls over a WebSocket --------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(bot) -> AsyncIterator[TestClient]:
    settings = door_settings(**bot.env(), KORE_VOICE_API_KEY=API_KEY)
    async with running(settings) as client:
        yield client


@pytest.fixture(scope="module")
def caller_audio(media: Path) -> Callable[[Path, str], bytes]:
    """`caller_audio(wav, "l16")`: a WAV as the stream's raw format, with silence around it to end the turn."""

    def convert(wav: Path, fmt: str) -> bytes:
        out = media / f"{wav.stem}.{fmt}"
        if not out.exists():
            l16 = ["-e", "signed", "-b", "16", "-L", "-r", "16000"]
            encoding = l16 if fmt == "l16" else ["-e", "mu-law", "-r", "8000"]
            run("sox", wav, "-c", "1", *encoding, "-t", "raw", out, "pad", "0.3", "1.5")
        return out.read_bytes()

    return convert


@pytest.fixture(scope="module")
def said(media: Path) -> Callable[[str], Path]:
    def say(text: str) -> Path:
        out = media / f"f2-{text.replace(' ', '_')}.wav"
        if not out.exists():
            run("espeak-ng", "-v", "en-us+f2", "-s", "140", "-w", out, text)
        return out

    return say


class Kiosk:
    """The client side of one stream: reads events (a play's audio attached as `audio`) until one it wants."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, fmt: str) -> None:
        self.ws = ws
        self.fmt = STREAM_FORMATS[fmt]
        self.seen: list[dict[str, Any]] = []

    async def event(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=60)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return {"type": "closed" if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) else "binary"}
        event = json.loads(msg.data)
        if event["type"] == "play":
            audio = await self.ws.receive(timeout=60)
            assert audio.type == aiohttp.WSMsgType.BINARY
            event["audio"] = audio.data
        self.seen.append(event)
        return event

    async def until(self, kind: str) -> dict[str, Any]:
        while (event := await self.event())["type"] != kind:
            assert event["type"] != "closed", self.seen
        return event

    async def final_transcript(self) -> dict[str, Any]:
        while not (heard := await self.until("transcript"))["final"]:
            pass
        return heard

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.seen if e["type"] == kind]

    async def stream(self, audio: bytes) -> None:
        size = round(self.fmt.rate * FRAME_S) * self.fmt.sample_bytes
        for at in range(0, len(audio), size):
            await self.ws.send_bytes(audio[at:at + size])

    async def ack_plays(self) -> None:
        for play in self.of("play"):
            await self.ws.send_json({"type": "played", "id": play["id"]})


async def call(service: TestClient, fmt: str) -> Kiosk:
    ws = await service.ws_connect(f"/v1/stream?key={API_KEY}")
    kiosk = Kiosk(ws, fmt)
    await ws.send_json({**START, "format": fmt})
    return kiosk


async def welcomed(service: TestClient, fmt: str) -> Kiosk:
    """A call whose welcome has played: the kiosk is listening."""
    kiosk = await call(service, fmt)
    await kiosk.until("listening")
    await kiosk.ack_plays()
    return kiosk


@module_loop
@pytest.mark.parametrize("fmt", ["l16", "ulaw"])
async def test_the_welcome_comes_as_events_and_audio_in_the_callers_format(service, fmt):
    kiosk = await call(service, fmt)
    started = await kiosk.event()
    assert started["type"] == "started" and started["id"].startswith("call-")
    listening = await kiosk.until("listening")
    assert listening == {"type": "listening", "expect": None}
    bots = kiosk.of("bot")
    assert [t for b in bots for t in b["texts"]] == ["Welcome to Demo Bank.", "How can I help you today?"]
    assert bots[-1]["menu"] == MENU
    plays = kiosk.of("play")
    assert plays and all(p["barge_in"] for p in plays)
    for play in plays:
        samples = len(play["audio"]) / kiosk.fmt.sample_bytes
        assert samples == pytest.approx(play["duration_s"] * kiosk.fmt.rate, abs=kiosk.fmt.rate * 0.0005 + 1)
        assert play["duration_s"] > 0.5
    await kiosk.ws.close()


@module_loop
@pytest.mark.parametrize("fmt", ["l16", "ulaw"])
async def test_a_spoken_menu_label_is_heard_and_answered(service, fmt, said, caller_audio):
    kiosk = await welcomed(service, fmt)
    await kiosk.stream(await asyncio.to_thread(lambda: caller_audio(said("check balance"), fmt)))
    heard = await kiosk.final_transcript()
    assert (heard["text"], heard["input"], heard["digits"]) == ("check balance", "speech", "")
    reply = await kiosk.until("bot")
    assert reply["texts"] == ["Your checking account balance is $2,450.18.",
                              "Is there anything else? You can say transfer, agent, or goodbye."]
    await kiosk.ws.close()


@module_loop
async def test_a_key_chooses_from_the_menu(service):
    kiosk = await call(service, "l16")
    await kiosk.until("listening")
    await kiosk.ws.send_json({"dtmf": "1"})
    assert await kiosk.until("transcript") == {"type": "transcript", "text": "balance", "final": True,
                                               "input": "dtmf", "digits": "1"}
    assert (await kiosk.until("bot"))["texts"][0] == "Your checking account balance is $2,450.18."
    await kiosk.ws.close()
    metrics = await (await service.get("/metrics")).text()
    assert 'kore_voice_turns_total{door="kiosk",input="dtmf"}' in metrics
    assert 'kore_voice_calls_started_total{door="kiosk"}' in metrics


@module_loop
async def test_an_agent_request_transfers_and_closes(service):
    kiosk = await call(service, "ulaw")
    await kiosk.until("listening")
    await kiosk.ws.send_json({"type": "dtmf", "digit": "3"})
    assert await kiosk.until("transfer") == {"type": "transfer", "to": "sip:agent@demo-bank.example"}
    assert kiosk.of("play")[-1]["text"] == "Connecting you to an agent. Please hold."
    assert (await kiosk.event())["type"] == "closed"


@module_loop
@pytest.mark.parametrize("fmt", ["l16", "ulaw"])
async def test_keypad_tones_in_the_audio_are_keys(service, fmt, tone_wav, caller_audio):
    kiosk = await welcomed(service, fmt)
    await kiosk.stream(await asyncio.to_thread(lambda: caller_audio(tone_wav("1"), fmt)))
    assert await kiosk.until("transcript") == {"type": "transcript", "text": "balance", "final": True,
                                               "input": "dtmf", "digits": "1"}
    await kiosk.ws.close()


@module_loop
async def test_speech_over_an_unplayed_prompt_barges_in(service, said, caller_audio):
    kiosk = await call(service, "l16")
    await kiosk.until("listening")  # the welcome is "still playing": no `played` sent
    await kiosk.stream(await asyncio.to_thread(lambda: caller_audio(said("talk to an agent"), "l16")))
    await kiosk.until("clear")
    heard = await kiosk.final_transcript()
    assert heard["text"] == "talk to an agent"
    assert await kiosk.until("transfer") == {"type": "transfer", "to": "sip:agent@demo-bank.example"}


@module_loop
async def test_every_bad_frame_gets_an_error_event_and_the_call_goes_on(service):
    ws = await service.ws_connect(f"/v1/stream?key={API_KEY}")
    kiosk = Kiosk(ws, "l16")
    await ws.send_bytes(b"\x00\x00")
    assert (await kiosk.until("error"))["message"].startswith("audio before the call started")
    await ws.send_str("not json")
    assert (await kiosk.until("error"))["message"] == "a text frame must be JSON"
    await ws.send_json({**START, "format": "l16"})
    await kiosk.until("listening")
    bad = [("str", "{oops"), ("json", {"type": "dance"}), ("json", {"type": "played"}),
           ("json", {"dtmf": "x"}), ("json", {**START, "format": "l16"}),
           ("bytes", b"\x00" * 641), ("bytes", b"\x00" * (MAX_AUDIO_FRAME_BYTES + 2))]
    for how, frame in bad:
        await getattr(ws, f"send_{how}")(frame)
        error = await kiosk.until("error")
        assert error["code"] == ("bad_request" if "dtmf" in str(frame) else "bad_frame") and error["message"]
    messages = [e["message"] for e in kiosk.of("error")]
    assert "unknown frame type 'dance'; use dtmf, played or stop" in messages
    assert "l16 frames hold whole 2-byte samples; got 641 bytes" in messages
    assert f"audio frames are at most {MAX_AUDIO_FRAME_BYTES} bytes" in messages
    await ws.send_json({"dtmf": "1"})
    assert (await kiosk.until("transcript"))["text"] == "balance"
    await ws.close()


@module_loop
async def test_the_stream_needs_the_api_key(service):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await service.ws_connect("/v1/stream?key=wrong")
    assert refused.value.status == 401
    ws = await service.ws_connect("/v1/stream", headers={"Authorization": f"Bearer {API_KEY}"})
    await ws.close()


@module_loop
async def test_stop_and_closing_the_socket_each_end_the_call_once(service, bot):
    kiosk = await call(service, "l16")
    stopped = (await kiosk.event())["id"]
    await kiosk.until("listening")
    await kiosk.ws.send_json({"type": "stop"})
    while (await kiosk.event())["type"] != "closed":
        pass
    assert bot.closures(stopped) == 1

    kiosk = await call(service, "ulaw")
    closed = (await kiosk.event())["id"]
    await kiosk.until("listening")
    await kiosk.ws.close()
    for _ in range(200):  # the hang-up runs after the socket's close handshake
        if bot.closures(closed):
            break
        await asyncio.sleep(0.05)
    assert bot.closures(closed) == 1


@module_loop
async def test_a_stream_over_the_call_limit_is_refused_with_an_error():
    async with running(door_settings(KORE_VOICE_MAX_CALLS="1")) as small:
        first = await call(small, "l16")
        assert (await first.event())["type"] == "started"
        second = await call(small, "ulaw")
        assert await second.event() == {"type": "error", "code": "busy",
                                        "message": "the service is at its limit of 1 calls; try again later"}
        assert (await second.event())["type"] == "closed"
        await first.ws.close()


@module_loop
async def test_a_socket_that_never_starts_a_call_is_closed(service, monkeypatch):
    monkeypatch.setattr(kiosk_stream, "START_TIMEOUT_S", 0.3)
    ws = await service.ws_connect(f"/v1/stream?key={API_KEY}")
    kiosk = Kiosk(ws, "l16")
    assert await kiosk.event() == {"type": "error", "code": "start_timeout", "message": "no start message within 0.3 s"}
    assert (await kiosk.event())["type"] == "closed"
    assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
    # the service goes on
    other = await call(service, "l16")
    assert (await other.event())["type"] == "started"
    await other.ws.close()


@module_loop
async def test_a_socket_that_sends_anything_but_start_is_closed_all_the_same(service, monkeypatch):
    monkeypatch.setattr(kiosk_stream, "START_TIMEOUT_S", 0.5)
    ws = await service.ws_connect(f"/v1/stream?key={API_KEY}")
    kiosk = Kiosk(ws, "l16")
    for _ in range(400):  # a frame every 5 ms, for twice the time allowed
        if ws.closed:
            break
        try:
            await ws.send_json({"type": "dtmf", "digit": "1"})
        except aiohttp.ClientConnectionResetError:  # the service closed it while we were writing
            break
        await asyncio.sleep(0.005)
    while (event := await kiosk.event())["type"] == "error" and event["code"] == "bad_frame":
        pass
    assert event == {"type": "error", "code": "start_timeout", "message": "no start message within 0.5 s"}
    assert ws.closed or (await kiosk.event())["type"] == "closed"


@module_loop
async def test_deeply_nested_json_gets_the_error_event_and_the_call_goes_on(service):
    kiosk = await welcomed(service, "l16")
    await kiosk.ws.send_str("[" * 2000 + "]" * 2000)
    error = await kiosk.until("error")
    assert (error["code"], error["message"]) == ("bad_frame", "a text frame must be JSON")
    await kiosk.ws.send_json({"dtmf": "1"})
    assert (await kiosk.until("transcript"))["text"] == "balance"
    await kiosk.ws.close()


@module_loop
async def test_the_session_store_is_written_on_change_and_empty_once_the_call_ends(service, monkeypatch):
    store = service.app[SERVICES].store
    writes: list[str] = []
    put = store.put

    async def counted(call_id: str, state: Any) -> bool:
        writes.append(call_id)
        return await put(call_id, state)

    monkeypatch.setattr(store, "put", counted)
    kiosk = await welcomed(service, "l16")
    call_id = kiosk.of("started")[0]["id"]
    await kiosk.stream(bytes(640 * 100))  # 2 s of silence in 20 ms frames
    await kiosk.ws.send_json({"dtmf": "1"})
    await kiosk.until("listening")
    assert 0 < writes.count(call_id) < 15, writes.count(call_id)
    await kiosk.ws.send_json({"type": "stop"})
    while (await kiosk.event())["type"] != "closed":  # the socket closes once the call has ended
        pass
    assert await store.get(call_id) is None and service.app[CALLS].get(call_id) is None


def stream_messages() -> st.SearchStrategy[str]:
    """Text frames: any text, JSON of any shape, messages with our keys and odd values, deep nesting."""
    values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=10)
    keys = st.sampled_from(["type", "from", "to", "format", "rate", "digit", "dtmf", "id"])
    kinds = st.sampled_from(["start", "dtmf", "played", "stop", "hello"])
    messages = st.dictionaries(keys, values | kinds | st.sampled_from(["l16", "ulaw", "+1555", "5"]), max_size=6)
    return st.one_of(st.text(max_size=200), messages.map(json.dumps),
                     st.integers(0, 2100).map(lambda n: "[" * n + "]" * n))


@settings(max_examples=400, deadline=None)
@given(stream_messages())
def test_any_text_frame_is_a_message_or_a_documented_error(text):
    for parse in (lambda message: parse_start(message, "en"), parse_control):
        try:
            parse(parse_text(text))
        except ApiError as exc:
            assert exc.code in ("bad_frame", "bad_request") and "\n" not in exc.message

"""The kiosk stream door: one WebSocket per call, live audio and keys in, events and prompt audio out.

`GET /v1/stream` (with `?key=KEY` when KORE_VOICE_API_KEY is set: browsers cannot send headers here).

Client to server:
- first, text `{"type": "start", "from", "to", "format": "l16" | "ulaw", "rate": 16000 | 8000}`: l16 is
  16-bit little-endian PCM at 16 kHz, ulaw is G.711 μ-law at 8 kHz (`rate` may be left out); a socket
  with no start within START_TIMEOUT_S gets error `start_timeout` and is closed (1008);
- binary frames: the caller's audio in that format (e.g. 20 ms each), at most MAX_AUDIO_FRAME_BYTES;
- text `{"type": "dtmf", "digit": "5"}` (or `{"dtmf": "5"}`): keypad keys;
- text `{"type": "played", "id": N}`: prompt N has finished playing (no-input timers start then);
- text `{"type": "stop"}`: hang up; the server closes the socket (closing it first hangs up too).

Server to client (text JSON unless said otherwise):
- `{"type": "started", "id"}`; `{"type": "transcript", "text", "final", "input", "digits"}`;
- `{"type": "bot", "texts", "menu": [{"digit", "label"}] | null}`;
- `{"type": "play", "id", "text", "duration_s", "barge_in"}` then, as the very next message, the prompt's
  audio as ONE binary message in the client's format; `{"type": "clear"}`: the caller barged in, stop
  playing and drop queued prompts;
- `{"type": "listening", "expect"}`; `{"type": "error", "code", "message"}` for a bad frame (codes
  `bad_frame`, `bad_request`; JSON nested over 100 levels is a bad frame) or a failed bot request
  (`bot_error`, `bot_timeout`, with a generic message naming an error id the service log has): the call goes on;
  code `busy` (the service is at KORE_VOICE_MAX_CALLS) is followed by the close;
- `{"type": "hangup", "reason"}` or `{"type": "transfer", "to"}`, then the server closes the socket.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from adapter.api_errors import ApiError
from adapter.app_state import CLOCK, TTS
from adapter.audio import g711
from adapter.calls.events import (
    AudioIn,
    BotFailed,
    BotSaid,
    CallerHungUp,
    Clear,
    HangUp,
    Heard,
    InputEvent,
    KeyIn,
    Listening,
    OutputEvent,
    Play,
    PlaybackDone,
    Transfer,
)
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.doors.live_call import serve
from adapter.doors.open_call import TooManyCalls, open_call
from adapter.doors.rest import (
    bot_error,
    expect_json,
    menu_json,
    parse_digits,
    parse_new_call,
    spoken_language,
)
from adapter.doors.watchdog import Watchdog
from adapter.json_body import JsonBodyError, load_json

log = logging.getLogger(__name__)

DOOR = "kiosk"
PATH = "/v1/stream"
# Two seconds of l16 per frame is plenty (browsers send 20-100 ms); larger frames get an error event.
MAX_AUDIO_FRAME_BYTES = 64 * 1024
MAX_TEXT_FRAME_CHARS = 4096
# A socket must say who is calling this soon, or it only holds a connection open.
START_TIMEOUT_S = 10.0
# aiohttp closes the socket (1009) above this; below it, we answer oversize frames with an error event.
MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """One audio format of the stream: the same both ways."""

    name: str
    rate: int
    sample_bytes: int
    out_format: str  # adapter.audio.encode.FORMATS name of the prompts sent back


STREAM_FORMATS = {f.name: f for f in (StreamFormat("l16", 16000, 2, "slin16k"),
                                      StreamFormat("ulaw", 8000, 1, "ulaw8k"))}


@dataclass(frozen=True, slots=True)
class Start:
    caller: str
    called: str
    format: StreamFormat


def bad_frame(message: str) -> ApiError:
    return ApiError(400, "bad_frame", message)


# --- parsing ------------------------------------------------------------------------------------


def parse_text(text: str) -> dict[str, Any]:
    """A text frame: one JSON object, not too long."""
    if len(text) > MAX_TEXT_FRAME_CHARS:
        raise bad_frame(f"text frames are at most {MAX_TEXT_FRAME_CHARS} characters")
    try:
        value = load_json(text)
    except JsonBodyError:
        raise bad_frame("a text frame must be JSON") from None
    if not isinstance(value, dict):
        raise bad_frame("a text frame must be a JSON object")
    return value


def parse_start(message: dict[str, Any], language: str) -> Start:
    """`{"type": "start", "from", "to", "format", "rate"?}`."""
    if message.get("type") != "start":
        raise bad_frame('send {"type": "start", "from", "to", "format"} first')
    new = parse_new_call(message, language)
    name = message.get("format")
    fmt = STREAM_FORMATS.get(name) if isinstance(name, str) else None
    if fmt is None:
        raise bad_frame(f'"format" must be one of {", ".join(STREAM_FORMATS)}')
    rate = message.get("rate", fmt.rate)
    if rate != fmt.rate:
        raise bad_frame(f'{fmt.name} audio is at {fmt.rate} Hz; "rate" must be {fmt.rate}')
    return Start(new.caller, new.called, fmt)


def parse_control(message: dict[str, Any]) -> list[InputEvent]:
    """A text frame after `start`: keys, a finished prompt, or the end of the call."""
    kind = message.get("type", "dtmf" if "dtmf" in message else None)
    if kind == "dtmf":
        return [KeyIn(key) for key in parse_digits(message.get("digit", message.get("dtmf")))]
    if kind == "played":
        prompt = message.get("id")
        if not isinstance(prompt, int) or isinstance(prompt, bool):
            raise bad_frame('"played" needs the prompt\'s "id", a whole number')
        return [PlaybackDone(prompt)]
    if kind == "stop":
        return [CallerHungUp()]
    if kind == "start":
        raise bad_frame("the call has already started")
    raise bad_frame(f"unknown frame type {kind!r}; use dtmf, played or stop")


def caller_pcm(data: bytes, fmt: StreamFormat) -> bytes:
    """A binary frame as the conversation's 16-bit PCM."""
    if len(data) > MAX_AUDIO_FRAME_BYTES:
        raise bad_frame(f"audio frames are at most {MAX_AUDIO_FRAME_BYTES} bytes")
    if len(data) % fmt.sample_bytes:
        raise bad_frame(f"{fmt.name} frames hold whole {fmt.sample_bytes}-byte samples; got {len(data)} bytes")
    return g711.ulaw_to_pcm16(data) if fmt.name == "ulaw" else data


def event_json(event: OutputEvent, call_id: str) -> dict[str, Any]:
    """The JSON event for a conversation event of call `call_id` (a Play's audio follows it as binary)."""
    match event:
        case Play():
            return {"type": "play", "id": event.prompt_id, "text": event.text, "duration_s": round(event.duration_s, 3),
                    "barge_in": event.barge_in}
        case Clear():
            return {"type": "clear"}
        case Heard():
            return {"type": "transcript", "text": event.text, "final": event.final, "input": event.input,
                    "digits": event.digits}
        case BotSaid():
            return {"type": "bot", "texts": list(event.texts), "menu": menu_json(event.menu)}
        case Listening():
            return {"type": "listening", "expect": expect_json(event.expect)}
        case BotFailed():
            return error_json(bot_error(event, call_id))
        case HangUp():
            return {"type": "hangup", "reason": event.reason}
        case Transfer():
            return {"type": "transfer", "to": event.to}
    raise TypeError(f"no stream event for {event!r}")


def error_json(error: ApiError) -> dict[str, Any]:
    return {"type": "error", "code": error.code, "message": " ".join(error.message.split())}


# --- the socket ---------------------------------------------------------------------------------


class KioskStream:
    """One socket, one call: frames in become conversation events; conversation events go out."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._app = request.app
        self._ws = ws
        self._sending = asyncio.Lock()  # a play event and its audio go out back to back
        self._call_id = ""

    async def _send(self, message: dict[str, Any], audio: bytes | None = None) -> None:
        async with self._sending:
            if self._ws.closed:
                return
            try:
                await self._ws.send_json(message)
                if audio is not None:
                    await self._ws.send_bytes(audio)
            except ConnectionResetError:  # the kiosk went away mid-send; the read loop sees the close
                log.info("stream: the client closed while we were sending")

    async def run(self) -> None:
        start = await self._wait_for_start()
        if start is None:
            return
        fmt = start.format
        try:
            conversation = open_call(
                self._app, CallInfo.new(DOOR, start.caller, start.called),
                AudioSpec(in_rate=fmt.rate, out_format=fmt.out_format, live=True, reports_playback=True))
        except TooManyCalls as exc:
            await self._send(error_json(ApiError(503, "busy", str(exc))))
            await self._ws.close()
            return
        self._call_id = conversation.call.user_id
        await serve(self._app, conversation, self._feed(conversation, fmt), self._play, self._ws.close)

    async def _wait_for_start(self) -> Start | None:
        """The `start` message; a socket that sends none in START_TIMEOUT_S is closed (1008)."""
        language = spoken_language(self._app[TTS].voice)
        closing: list[asyncio.Task[None]] = []  # the watchdog's close, kept until it is done
        watchdog = Watchdog(self._app[CLOCK], START_TIMEOUT_S, lambda: closing.append(
            asyncio.create_task(self._refuse_late_start())))
        try:
            async for msg in self._ws:  # ends when the watchdog closes the socket
                try:
                    if msg.type != WSMsgType.TEXT:
                        raise bad_frame('audio before the call started; send {"type": "start", ...} first')
                    return parse_start(parse_text(msg.data), language)
                except ApiError as exc:
                    await self._send(error_json(exc))
        finally:
            watchdog.stop()
        if closing:
            await closing[0]
        return None

    async def _refuse_late_start(self) -> None:
        await self._send(error_json(ApiError(408, "start_timeout", f"no start message within {START_TIMEOUT_S:g} s")))
        await self._ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no start message")

    async def _feed(self, conversation: Conversation, fmt: StreamFormat) -> None:
        await self._send({"type": "started", "id": conversation.call.user_id})
        async for msg in self._ws:
            try:
                if msg.type == WSMsgType.BINARY:
                    conversation.send(AudioIn(caller_pcm(msg.data, fmt)))
                elif msg.type == WSMsgType.TEXT:
                    for event in parse_control(parse_text(msg.data)):
                        conversation.send(event)
            except ApiError as exc:
                await self._send(error_json(exc))

    async def _play(self, event: OutputEvent) -> None:
        await self._send(event_json(event, self._call_id), event.audio if isinstance(event, Play) else None)


async def stream(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    await KioskStream(request, ws).run()
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, stream)

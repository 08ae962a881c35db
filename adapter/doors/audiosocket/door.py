"""The Asterisk AudioSocket door: a TCP listener Asterisk connects to, one connection per call.

- The listener starts with the service when KORE_VOICE_AUDIOSOCKET_PORT is set, on
  KORE_VOICE_AUDIOSOCKET_HOST (loopback by default: AudioSocket has no authentication). A peer outside
  KORE_VOICE_AUDIOSOCKET_ALLOW is closed at once, and logged.
- The first frame must be the call's UUID (frames.py); then the call opens, with the numbers registered
  for that UUID (calls.py) or none. The bot's user id is `audiosocket-<uuid hex>-<random>`: the UUID
  names the call, and a dialplan that reuses one never resumes an old bot session.
- Caller audio and keys (0x03, Asterisk 20+) go to the conversation; 0x00, an error frame (0xff) or
  EOF is the caller hanging up.
- Prompts go out as 20 ms audio frames of exactly 320 bytes (8 kHz) on the shared pacer's schedule,
  never ahead by more than its lead (what is sent cannot be taken back on barge-in). Asterisk echoes
  nothing, so a prompt counts as played once its play time has passed.
- When the bot hangs up or transfers, the goodbye plays out, then we send 0x00 and close; the transfer
  target waits for the dialplan at `GET /v1/audiosocket/{uuid}` (calls.py), as Asterisk cannot be told.
- A frame that breaks the protocol, or no frame for STALL_S (Asterisk sends audio every 20 ms, silence
  included): that connection is closed (0x00 first) with the reason logged; other calls go on.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from adapter.app_state import CLOCK
from adapter.calls.events import AudioIn, HangUp, KeyIn, Transfer
from adapter.calls.info import CallInfo
from adapter.calls.keypad import DTMF_KEYS
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.doors.audiosocket.calls import BOOK, Ended, add_call_routes
from adapter.doors.audiosocket.frames import (
    AUDIO_KINDS,
    HANGUP_FRAME,
    Audio,
    CallId,
    Dtmf,
    Frame,
    FrameError,
    Hangup,
    PeerError,
    encode,
    frame_bytes,
    read_frame,
)
from adapter.doors.audiosocket.settings import AUDIOSOCKET, AudioSocketSettings
from adapter.doors.live_call import paced, played, serve
from adapter.doors.open_call import TooManyCalls, open_call
from adapter.doors.pacer import PACER, FrameFormat, PacedStream
from adapter.doors.watchdog import Watchdog

log = logging.getLogger(__name__)

DOOR = "audiosocket"
#: Asterisk sends a frame every 20 ms for the whole call: this long without one, the peer is gone
STALL_S = 15.0
#: a peer that leaves this much of our audio unread is not closed politely but cut off
MAX_UNSENT_BYTES = 64 * 1024
#: the prompt format for each rate the door takes (raw little-endian samples, as the frames carry them)
OUT_FORMATS = {8000: "slin8k", 16000: "slin16k"}

SERVER = web.AppKey("audiosocket_server", asyncio.Server)


def audio_spec(rate: int) -> AudioSpec:
    """Keys come as 0x03 frames (Asterisk 20+), so none are listened for in the audio: both would count a
    key twice."""
    return AudioSpec(in_rate=rate, out_format=OUT_FORMATS[rate], live=True, reports_playback=True,
                     inband_dtmf=False)


class AudioSocketCall:
    """One connection from Asterisk, one call."""

    def __init__(self, app: web.Application, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: str) -> None:
        self._app = app
        self._reader = reader
        self._writer = writer
        self._settings: AudioSocketSettings = app[AUDIOSOCKET]
        self._audio_kind = AUDIO_KINDS[self._settings.rate]
        self._name = f"audiosocket call from {peer}"
        self._uuid: uuid.UUID | None = None
        self._end = Ended(None)
        stalled = FrameError(f"no frame for {STALL_S:g} s")
        self._watchdog = Watchdog(app[CLOCK], STALL_S, lambda: reader.set_exception(stalled))

    async def run(self) -> None:
        try:
            try:
                conversation = self._open(await self._first_frame())
            except FrameError as exc:
                log.warning("%s: closing: %s", self._name, exc.reason)
                return
            stream = PacedStream(self._app[PACER], FrameFormat(frame_bytes(self._settings.rate), b"\x00"),
                                 self._send_audio, played(conversation), transport=self._writer.transport,
                                 name=self._name)
            await serve(self._app, conversation, self._feed(conversation, stream), paced(stream, self._ended),
                        self._close)
        finally:
            self._watchdog.stop()
            if self._uuid is not None:
                self._app[BOOK].end(self._uuid, self._end)
            await self._close()

    async def _read(self) -> Frame | None:
        frame = await read_frame(self._reader, self._audio_kind)
        self._watchdog.saw()
        return frame

    async def _first_frame(self) -> uuid.UUID:
        try:
            frame = await self._read()
        except ConnectionError:
            frame = None
        match frame:
            case CallId(value):
                return value
            case None | Hangup():
                raise FrameError("the peer hung up before sending the call's UUID")
            case Audio():
                raise FrameError("audio before the call's UUID")
        raise FrameError(f"{type(frame).__name__} frame before the call's UUID")

    def _open(self, call: uuid.UUID) -> Conversation:
        self._name = f"audiosocket call {call}"
        try:
            numbers = self._app[BOOK].connect(call)
        except LookupError as exc:
            raise FrameError(str(exc)) from None
        self._uuid = call
        info = CallInfo(f"{DOOR}-{call.hex}-{secrets.token_hex(4)}", numbers.caller if numbers else None,
                        numbers.called if numbers else None, DOOR)
        try:
            return open_call(self._app, info, audio_spec(self._settings.rate))
        except TooManyCalls as exc:
            raise FrameError(str(exc)) from None

    async def _feed(self, conversation: Conversation, stream: PacedStream) -> None:
        """Caller audio and keys into the conversation until the caller hangs up or breaks the protocol."""
        try:
            while True:
                match await self._read():
                    case Audio(pcm):
                        conversation.send(AudioIn(pcm))
                    case Dtmf(key) if key in DTMF_KEYS:  # A-D: no keypad menu uses them
                        conversation.send(KeyIn(key))
                    case PeerError() as error:
                        log.info("%s: Asterisk reports an error: %s; ending the call", self._name, error.meaning)
                        return
                    case Hangup() | None:
                        return
                    case CallId():
                        raise FrameError("a second UUID frame")
        except FrameError as exc:
            log.warning("%s: closing: %s", self._name, exc.reason)
        except ConnectionError as exc:
            log.info("%s: the connection broke: %s", self._name, exc)
        finally:
            stream.close()

    async def _ended(self, event: HangUp | Transfer) -> None:
        """The goodbye has played: how the call ended, for the dialplan's lookup once we close."""
        self._end = Ended("transfer", event.to) if isinstance(event, Transfer) else Ended("hangup")

    async def _send_audio(self, frame: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionResetError("the connection is closed")
        self._writer.write(encode(self._audio_kind, frame))

    async def _close(self) -> None:
        """Hang up (0x00) and close; a peer that does not read what we sent is cut off instead."""
        if self._writer.is_closing():
            return
        self._writer.write(HANGUP_FRAME)
        if self._writer.transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            self._writer.transport.abort()
        else:
            self._writer.close()


async def _connected(app: web.Application, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peername = writer.get_extra_info("peername")
    address = peername[0] if isinstance(peername, tuple) else str(peername)
    if not app[AUDIOSOCKET].allows(address):
        log.warning("audiosocket: refused a connection from %s: not in KORE_VOICE_AUDIOSOCKET_ALLOW", address)
        writer.close()
        return
    try:
        await AudioSocketCall(app, reader, writer, address).run()
    except Exception:  # one call's bug must not reach asyncio's handler, nor stop the listener
        log.exception("audiosocket: the call from %s failed", address)
        writer.transport.abort()


async def _listening(app: web.Application) -> AsyncIterator[None]:
    """The TCP listener, while the app runs."""
    settings = app[AUDIOSOCKET]
    server = await asyncio.start_server(lambda r, w: _connected(app, r, w), settings.host, settings.port)
    app[SERVER] = server
    log.info("audiosocket: listening on %s", ", ".join(str(s.getsockname()[:2]) for s in server.sockets))
    yield
    server.close()
    await server.wait_closed()


def add_routes(app: web.Application, settings: AudioSocketSettings) -> None:
    """The registration and lookup routes always (a dialplan may call them before the listener is
    configured: they are harmless); the listener only when a port is set."""
    app[AUDIOSOCKET] = settings
    add_call_routes(app)
    if settings.port is not None:
        app.cleanup_ctx.append(_listening)

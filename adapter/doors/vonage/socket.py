"""`GET /vonage/ws`: the WebSocket Vonage opens for a call our NCCO connected (specs/telephony.md §10.3).

The first message must be `websocket:connected` with L16 at 16 kHz and our headers, whose stream token
(issued by the answer webhook) must be valid, unused and for the uuid it names, or the socket closes
before any conversation starts. Then caller frames, keys and notify echoes become conversation events;
prompts go back as 640-byte frames paced by the shared pacer (adapter/doors/pacer.py) with a notify
each, and `clear` on barge-in. A message that breaks the protocol closes this socket (1003/1008, reason
logged) and hangs up its call; other calls go on. A socket silent for IDLE_TIMEOUT_S (Vonage sends
audio every 20 ms) or without `connected` within HANDSHAKE_TIMEOUT_S is closed, on the app's clock.
The bot's hang-up closes the socket once its goodbye has played, and ends the caller's leg through the
REST API when the application's key is configured.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from adapter.api_errors import ApiError
from adapter.app_state import CALLS, CLOCK
from adapter.calls.clock import Timer
from adapter.calls.events import AudioIn, Clear, HangUp, KeyIn, OutputEvent, Play, PlaybackDone, Transfer
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.doors.live_call import serve
from adapter.doors.open_call import TooManyCalls, open_call
from adapter.doors.pacer import PACER, SLIN_16K, PacedStream
from adapter.doors.twilio.stream_token import StreamTokenError, StreamTokens
from adapter.doors.vonage.call_control import CallControl
from adapter.doors.vonage.messages import (
    MAX_TEXT_CHARS,
    RATE,
    Dtmf,
    Ignored,
    Notified,
    SocketError,
    check_audio,
    clear_message,
    notify_message,
    parse_connected,
    parse_event,
)
from adapter.doors.vonage.ncco import PREFIX, call_uuid

log = logging.getLogger(__name__)

DOOR = "vonage"
PATH = "/vonage/ws"
# Vonage reports keys as websocket:dtmf: no in-band detection (it would count each key twice).
SOCKET_AUDIO = AudioSpec(in_rate=RATE, out_format="slin16k", live=True, reports_playback=True, inband_dtmf=False)
HANDSHAKE_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 15.0
#: how long after its audio should have played we wait for a goodbye's notify before closing anyway
GOODBYE_GRACE_S = 3.0
MAX_IGNORED_KINDS = 16

STREAM_TOKENS = web.AppKey("vonage_stream_tokens", StreamTokens)
CALL_CONTROL = web.AppKey("vonage_call_control", CallControl)


class Watchdog:
    """Closes a socket that has been silent too long, on the app's clock: one timer, re-armed only when it
    fires (not per message), so Vonage's 50 frames a second cost one clock read each."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, name: str) -> None:
        self._clock = request.app[CLOCK]
        self._ws = ws
        self.name = name
        self._limit_s = 0.0
        self._reason = ""
        self._last = self._clock.now()
        self._timer: Timer | None = None
        self._closing: asyncio.Task[bool] | None = None

    def watch(self, limit_s: float, reason: str) -> None:
        """From now on, close the socket after `limit_s` without a message, for `reason`."""
        self._limit_s, self._reason = limit_s, reason
        self.heard()
        if self._timer is None:
            self._timer = self._clock.call_later(limit_s, self._check)

    def heard(self) -> None:
        self._last = self._clock.now()

    def _check(self) -> None:
        left = self._last + self._limit_s - self._clock.now()
        if left > 0:
            self._timer = self._clock.call_later(left, self._check)
            return
        self._timer = None
        log.warning("vonage socket %s: closing: %s", self.name, self._reason)
        self._closing = asyncio.create_task(
            self._ws.close(code=WSCloseCode.POLICY_VIOLATION, message=self._reason.encode()[:123]))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class VonageSocket:
    """One Vonage WebSocket, one call."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._app = request.app
        self._ws = ws
        self._transport = request.transport
        self._uuid = "?"
        self._ignored: set[str] = set()
        self._watchdog = Watchdog(request, ws, "?")

    async def run(self) -> None:
        self._watchdog.watch(HANDSHAKE_TIMEOUT_S, f"no websocket:connected within {HANDSHAKE_TIMEOUT_S:g} s")
        try:
            try:
                conversation = await self._open(await self._handshake())
            except SocketError as exc:
                await self._close(exc)
                return
            self._watchdog.watch(IDLE_TIMEOUT_S, f"no message for {IDLE_TIMEOUT_S:g} s")
            ws = self._ws
            stream = PacedStream(self._app[PACER], SLIN_16K, ws.send_bytes,
                                 lambda prompt: conversation.send(PlaybackDone(prompt)),
                                 send_marker=lambda prompt: ws.send_str(notify_message(prompt)),
                                 send_clear=lambda: ws.send_str(clear_message()),
                                 transport=self._transport, name=f"vonage socket {self._uuid}")
            await serve(self._app, conversation, self._feed(conversation, stream),
                        lambda event: self._play(event, stream), ws.close)
        finally:
            self._watchdog.cancel()

    async def _close(self, error: SocketError) -> None:
        log.warning("vonage socket %s: closing: %s", self._uuid, error.reason)
        await self._ws.close(code=error.code, message=error.reason.encode()[:123])

    async def _receive(self) -> str | bytes | None:
        """The next message's data; None once the socket closes."""
        msg = await self._ws.receive()
        self._watchdog.heard()
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return msg.data
        if msg.type == WSMsgType.ERROR:  # aiohttp has closed it (1009 over max_msg_size)
            raise SocketError(f"unreadable frame: {msg.data}", WSCloseCode.MESSAGE_TOO_BIG)
        return None  # closing or closed

    async def _handshake(self) -> dict[str, object]:
        data = await self._receive()
        if data is None:
            raise SocketError("the socket closed before websocket:connected", WSCloseCode.OK)
        if isinstance(data, bytes):
            raise SocketError("audio before websocket:connected")
        return parse_connected(data).headers

    async def _open(self, headers: dict[str, object]) -> Conversation:
        tokens = self._app[STREAM_TOKENS]
        try:
            uuid = call_uuid(headers.get("uuid"))
        except ApiError:
            raise SocketError("websocket:connected has no valid uuid header") from None
        self._uuid = self._watchdog.name = uuid
        try:
            grant = await tokens.redeem(headers.get("token"), uuid)
        except StreamTokenError as exc:
            raise SocketError(exc.reason) from None
        uid = PREFIX + uuid
        if self._app[CALLS].known(uid):
            raise SocketError(f"call {uuid} already had a conversation")
        try:
            return open_call(self._app, CallInfo(uid, grant.caller or None, grant.called or None, DOOR), SOCKET_AUDIO)
        except TooManyCalls as exc:
            raise SocketError(str(exc), WSCloseCode.TRY_AGAIN_LATER) from None

    async def _feed(self, conversation: Conversation, stream: PacedStream) -> None:
        try:
            while (data := await self._receive()) is not None:
                if isinstance(data, bytes):
                    conversation.send(AudioIn(check_audio(data)))
                    continue
                match parse_event(data):
                    case Dtmf(digit):
                        conversation.send(KeyIn(digit))
                    case Notified(prompt) if prompt is not None:
                        stream.echoed(prompt)
                    case Ignored(kind) if kind not in self._ignored and len(self._ignored) < MAX_IGNORED_KINDS:
                        self._ignored.add(kind)
                        log.warning("vonage socket %s: ignoring %s (logged once)", self._uuid, kind)
        except SocketError as exc:
            await self._close(exc)
        finally:
            stream.close()

    async def _play(self, event: OutputEvent, stream: PacedStream) -> None:
        match event:
            case Play():
                await stream.play(event.prompt_id, event.audio)
            case Clear():
                await stream.clear()
            case HangUp() | Transfer():
                if isinstance(event, Transfer):  # the WebSocket cannot transfer: the bot's goodbye, then hang up
                    log.warning("vonage call %s: transfer to %s is not supported; hanging up", self._uuid, event.to)
                if not await stream.wait_played(stream.queued_s + GOODBYE_GRACE_S):
                    log.info("vonage socket %s: the goodbye's notify did not come back; closing anyway", self._uuid)
                control = self._app.get(CALL_CONTROL)
                if control is not None:
                    await control.hang_up(self._uuid)


async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_TEXT_CHARS * 4, compress=False)
    await ws.prepare(request)
    await VonageSocket(request, ws).run()
    return ws

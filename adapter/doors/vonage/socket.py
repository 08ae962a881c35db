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
from adapter.calls.events import AudioIn, HangUp, KeyIn, Transfer
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.doors.live_call import paced, played, serve
from adapter.doors.open_call import TooManyCalls, open_call
from adapter.doors.pacer import PACER, SLIN_16K, PacedStream
from adapter.doors.socket_messages import IgnoredLog, SocketError
from adapter.doors.twilio.stream_token import StreamTokenError, StreamTokens
from adapter.doors.vonage.call_control import CallControl
from adapter.doors.vonage.messages import (
    MAX_TEXT_CHARS,
    RATE,
    Dtmf,
    Ignored,
    Notified,
    check_audio,
    clear_message,
    notify_message,
    parse_connected,
    parse_event,
)
from adapter.doors.vonage.ncco import PREFIX, call_uuid
from adapter.doors.watchdog import Watchdog

log = logging.getLogger(__name__)

DOOR = "vonage"
PATH = "/vonage/ws"
# Vonage reports keys as websocket:dtmf: no in-band detection (it would count each key twice).
SOCKET_AUDIO = AudioSpec(in_rate=RATE, out_format="slin16k", live=True, reports_playback=True, inband_dtmf=False)
HANDSHAKE_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 15.0

STREAM_TOKENS = web.AppKey("vonage_stream_tokens", StreamTokens)
CALL_CONTROL = web.AppKey("vonage_call_control", CallControl)


class VonageSocket:
    """One Vonage WebSocket, one call."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._app = request.app
        self._ws = ws
        self._transport = request.transport
        self._uuid = "?"
        self._ignored = IgnoredLog(lambda: f"vonage socket {self._uuid}")
        self._closing: asyncio.Task[None] | None = None
        self._watchdog = Watchdog(request.app[CLOCK], HANDSHAKE_TIMEOUT_S, lambda: self._expire(
            f"no websocket:connected within {HANDSHAKE_TIMEOUT_S:g} s"))

    async def run(self) -> None:
        try:
            try:
                conversation = await self._open(await self._handshake())
            except SocketError as exc:
                await self._close(exc)
                return
            self._watchdog.watch(IDLE_TIMEOUT_S, lambda: self._expire(f"no message for {IDLE_TIMEOUT_S:g} s"))
            ws = self._ws
            stream = PacedStream(self._app[PACER], SLIN_16K, ws.send_bytes, played(conversation),
                                 send_marker=lambda prompt: ws.send_str(notify_message(prompt)),
                                 send_clear=lambda: ws.send_str(clear_message()),
                                 transport=self._transport, name=f"vonage socket {self._uuid}")
            await serve(self._app, conversation, self._feed(conversation, stream), paced(stream, self._ended),
                        ws.close)
        finally:
            self._watchdog.stop()

    def _expire(self, reason: str) -> None:
        """The watchdog's verdict: the socket closes as for a broken protocol (1008)."""
        self._closing = asyncio.create_task(self._close(SocketError(reason)))

    async def _close(self, error: SocketError) -> None:
        log.warning("vonage socket %s: closing: %s", self._uuid, error.reason)
        await self._ws.close(code=error.code, message=error.reason.encode()[:123])

    async def _receive(self) -> str | bytes | None:
        """The next message's data; None once the socket closes."""
        msg = await self._ws.receive()
        self._watchdog.saw()
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
        self._uuid = uuid
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
                    case Ignored() as ignored:
                        self._ignored.saw(ignored)
        except SocketError as exc:
            await self._close(exc)
        finally:
            stream.close()

    async def _ended(self, event: HangUp | Transfer) -> None:
        """The goodbye has played: the caller's leg ends through the REST API when we may."""
        if isinstance(event, Transfer):  # the WebSocket cannot transfer: the bot's goodbye, then hang up
            log.warning("vonage call %s: transfer to %s is not supported; hanging up", self._uuid, event.to)
        control = self._app.get(CALL_CONTROL)
        if control is not None:
            await control.hang_up(self._uuid)


async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_TEXT_CHARS * 4, compress=False)
    await ws.prepare(request)
    await VonageSocket(request, ws).run()
    return ws

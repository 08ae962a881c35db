"""The Twilio door in media-streams mode: `<Connect><Stream>` TwiML, then one WebSocket per call.

- `connect_response(request, params)`: what the signed `/twilio/voice` webhook answers, a `<Connect>`
  whose `<Stream url="wss://PUBLIC/twilio/media">` carries a short-lived token for the call
  (stream_token.py; specs/telephony.md §2.8: Twilio does not sign the socket).
- `GET /twilio/media`: Twilio's stream (§2.2-2.4). `start` must bring a valid, unused token for its
  `callSid` and μ-law 8 kHz audio, or the socket closes before any conversation starts. Then caller
  audio, keys, echoed marks and `stop` become conversation events; prompts go back as 20 ms `media`
  frames paced by the shared pacer (adapter/doors/pacer.py) and a `mark` each, `clear` on barge-in. A
  message that breaks the protocol closes this stream (1003/1008/1009, reason logged) and hangs up its
  call; other calls go on. An event we do not know (Twilio adds events) or a key we do not know is
  logged once per kind and passed over. A socket without `start` within HANDSHAKE_TIMEOUT_S is closed,
  whatever else it sends.
- `POST /twilio/after-stream` (the `<Connect action>`): once we close the socket after a goodbye,
  Twilio asks what next: `<Dial>` for a transfer, `<Hangup/>` otherwise, an apology at the call limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiohttp import WSCloseCode, WSMsgType, web
from twilio.twiml.voice_response import VoiceResponse

from adapter.api_errors import ApiError
from adapter.app_state import CALLS, CLOCK, CONVERSATION, SERVICE
from adapter.audio import g711
from adapter.calls.events import AudioIn, HangUp, KeyIn, Transfer
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.doors.live_call import paced, played, serve
from adapter.doors.open_call import TooManyCalls, open_call
from adapter.doors.pacer import PACER, ULAW_8K, PacedStream
from adapter.doors.socket_messages import IgnoredLog, SocketError
from adapter.doors.twilio.after_stream import AfterStream
from adapter.doors.twilio.call_sid import call_sid, user_id
from adapter.doors.twilio.media_messages import (
    MAX_MESSAGE_CHARS,
    Dtmf,
    Ignored,
    Mark,
    Media,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_message,
    prompt_of,
)
from adapter.doors.twilio.settings import TWILIO
from adapter.doors.twilio.signature import base_url, verified_params
from adapter.doors.twilio.stream_token import StreamTokenError, StreamTokens
from adapter.doors.twilio.twiml import goodbye, hang_up, http_response, transfer
from adapter.doors.watchdog import Watchdog

log = logging.getLogger(__name__)

DOOR = "twilio-media"
PATH = "/twilio/media"
AFTER_STREAM_PATH = "/twilio/after-stream"
TOKEN_PARAMETER = "token"
# Twilio reports keys as `dtmf` messages (specs/telephony.md §2.2): no in-band detection.
STREAM_AUDIO = AudioSpec(in_rate=8000, out_format="ulaw8k", live=True, reports_playback=True, inband_dtmf=False)
#: Twilio sends `connected` and `start` as soon as the socket is up: the whole handshake's budget
HANDSHAKE_TIMEOUT_S = 10.0
#: Twilio sends audio every 20 ms for the whole call; this long without a message, the stream is dead
IDLE_TIMEOUT_S = 15.0
STREAM_TOKENS = web.AppKey("twilio_stream_tokens", StreamTokens)
AFTER_STREAM = web.AppKey("twilio_after_stream", AfterStream)


# --- TwiML --------------------------------------------------------------------------------------


def connect_response(request: web.Request, params: Mapping[str, str]) -> VoiceResponse:
    """`<Connect action=…/twilio/after-stream><Stream url="wss://…/twilio/media">` with the call's token.

    Call only after the webhook's signature has been checked: the token vouches for its CallSid,
    From and To.

    Raises:
        ApiError: 400 no valid CallSid; 503 no TWILIO_AUTH_TOKEN (nothing to sign tokens with).
    """
    sid = call_sid(params)
    tokens = request.app.get(STREAM_TOKENS)
    if tokens is None:
        raise ApiError(503, "twilio_not_configured", "media streams need TWILIO_AUTH_TOKEN to sign stream tokens")
    base = base_url(request)
    response = VoiceResponse()
    stream = response.connect(action=base + AFTER_STREAM_PATH).stream(url="ws" + base.removeprefix("http") + PATH)
    stream.parameter(name=TOKEN_PARAMETER, value=tokens.issue(sid, params.get("From", ""), params.get("To", "")))
    return response


# --- the socket ---------------------------------------------------------------------------------


class MediaStream:
    """One Twilio Media Stream, one call."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._request = request
        self._app = request.app
        self._ws = ws
        self._sid = "?"  # the stream's id, for the log, once `start` names it
        self._call = "?"
        self._ignored = IgnoredLog(lambda: f"twilio stream {self._sid} (call {self._call})")
        self._closing: asyncio.Task[None] | None = None
        # The whole handshake has one deadline: a peer that keeps sending `connected` does not hold the socket.
        self._watchdog = Watchdog(request.app[CLOCK], HANDSHAKE_TIMEOUT_S,
                                  lambda: self._expire(SocketError(f"no start within {HANDSHAKE_TIMEOUT_S:g} s")))

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self._watchdog.stop()

    async def _run(self) -> None:
        try:
            start = await self._handshake()
            conversation = await self._open(start)
        except SocketError as exc:
            await self._close(exc)
            return
        self._watchdog.watch(IDLE_TIMEOUT_S, lambda: self._expire(
            SocketError(f"no message for {IDLE_TIMEOUT_S:g} s", WSCloseCode.GOING_AWAY)))
        sid, ws = start.stream_sid, self._ws
        playout = PacedStream(
            self._app[PACER], ULAW_8K, lambda frame: ws.send_str(media_message(sid, frame)), played(conversation),
            send_marker=lambda prompt: ws.send_str(mark_message(sid, prompt)),
            send_clear=lambda: ws.send_str(clear_message(sid)), transport=self._request.transport,
            name=f"twilio stream {sid}")
        await serve(self._app, conversation, self._feed(conversation, playout), paced(playout, self._ended), ws.close)

    def _expire(self, error: SocketError) -> None:
        """The watchdog's verdict: the socket closes, which ends whatever reads it."""
        self._closing = asyncio.create_task(self._close(error))

    async def _close(self, error: SocketError) -> None:
        if self._ws.closed:
            return
        log.warning("twilio stream %s (call %s): closing: %s", self._sid, self._call, error.reason)
        await self._ws.close(code=error.code, message=error.reason.encode()[:123])

    async def _receive(self) -> str | None:
        """The next text frame, None once the socket closes; any other frame breaks the protocol."""
        msg = await self._ws.receive()
        if msg.type == WSMsgType.TEXT:
            return msg.data
        if msg.type == WSMsgType.BINARY:
            raise SocketError("a binary frame: Media Streams messages are JSON text", WSCloseCode.UNSUPPORTED_DATA)
        if msg.type == WSMsgType.ERROR:  # aiohttp has closed it (1009 over max_msg_size)
            raise SocketError(f"unreadable frame: {msg.data}", WSCloseCode.MESSAGE_TOO_BIG)
        return None  # closing or closed

    async def _handshake(self) -> Start:
        """`connected` (optional), then `start` with a token that lets this call in, all within
        HANDSHAKE_TIMEOUT_S (the watchdog closes the socket then)."""
        while True:
            text = await self._receive()
            if text is None:
                raise SocketError("the socket closed before start", WSCloseCode.OK)
            match parse_message(text, None):
                case Start() as start:
                    self._sid, self._call = start.stream_sid, start.call_sid
                    return start
                case Ignored() as ignored:
                    self._ignored.saw(ignored)

    async def _open(self, start: Start) -> Conversation:
        tokens = self._app.get(STREAM_TOKENS)
        if tokens is None:
            raise SocketError("TWILIO_AUTH_TOKEN is not set: no stream can be checked")
        try:
            grant = await tokens.redeem(start.parameters.get(TOKEN_PARAMETER), start.call_sid)
        except StreamTokenError as exc:
            raise SocketError(exc.reason) from None
        uid = user_id(grant.call_sid)
        if self._app[CALLS].known(uid):
            raise SocketError(f"call {grant.call_sid} already had a conversation")
        try:
            return open_call(self._app, CallInfo(uid, grant.caller or None, grant.called or None, DOOR), STREAM_AUDIO)
        except TooManyCalls as exc:
            await self._app[AFTER_STREAM].put(grant.call_sid, goodbye(self._app[CONVERSATION].phrases.unavailable))
            raise SocketError(str(exc), WSCloseCode.TRY_AGAIN_LATER) from None

    async def _feed(self, conversation: Conversation, playout: PacedStream) -> None:
        try:
            while (text := await self._receive()) is not None:
                self._watchdog.saw()
                match parse_message(text, self._sid):
                    case Media(ulaw):
                        conversation.send(AudioIn(g711.ulaw_to_pcm16(ulaw)))
                    case Dtmf(digit):
                        conversation.send(KeyIn(digit))
                    case Mark(name):
                        if (prompt := prompt_of(name)) is not None:
                            playout.echoed(prompt)
                    case Ignored() as ignored:
                        self._ignored.saw(ignored)
                    case Stop():
                        return
        except SocketError as exc:
            await self._close(exc)
        finally:
            playout.close()

    async def _ended(self, event: HangUp | Transfer) -> None:
        """The goodbye has played; once we close, Twilio asks /twilio/after-stream what next."""
        await self._app[AFTER_STREAM].put(self._call, transfer(event.to) if isinstance(event, Transfer) else hang_up())


async def media(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=4 * MAX_MESSAGE_CHARS, compress=False)
    await ws.prepare(request)
    await MediaStream(request, ws).run()
    return ws


async def after_stream(request: web.Request) -> web.Response:
    """Twilio's signed request once a stream has ended: the TwiML that continues the call."""
    params = await verified_params(request, request.app[TWILIO], request.app[SERVICE].public_url)
    return http_response(await request.app[AFTER_STREAM].take(call_sid(params)))


def add_routes(app: web.Application) -> None:
    """The media-streams routes, in that mode only (twiml mode has no socket to guard)."""
    twilio = app[TWILIO]
    if twilio.mode != "media-streams":
        return
    if twilio.auth_token is not None:
        app[STREAM_TOKENS] = StreamTokens(twilio.auth_token.reveal(), app[CLOCK])
    app[AFTER_STREAM] = AfterStream(app)
    app.router.add_get(PATH, media)
    app.router.add_post(AFTER_STREAM_PATH, after_stream)

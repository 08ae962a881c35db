"""Twilio Programmable Voice in TwiML mode: signed webhooks in, the conversation's turns out as TwiML.

`POST /twilio/voice` starts the call (or, in media-streams mode, hands it to adapter/doors/twilio/media.py);
`POST /twilio/recording` and `POST /twilio/gather` take the caller's speech (a recording we fetch and
transcribe) or keys; `POST /twilio/status` ends the call when Twilio says it is over; `GET
/twilio/audio/<token>/<n>.wav` serves our prompts to Twilio's media player. How the TwiML collects
speech and keys: adapter/doors/twilio/twiml.py.

Each call is a request/response call of the REST door's kind (adapter/doors/rest_calls.py) whose
answers are numbered: action URLs carry the number (`t`) of the answer they follow, and Twilio waits
for one answer before it sends the next webhook, so a webhook that follows an older answer, or comes
while an answer is still being made, is a retry (Twilio's connection retries, a slow turn): it gets
the latest answer, awaited if need be, and the caller's input never reaches the bot twice.

With KORE_VOICE_REDIS_URL a call's webhooks may land on any instance (adapter/doors/rest_calls.py's
`SharedCalls`): each holds the call's Redis lock (waiting for a turn under way elsewhere: an error page
would end Twilio's call), runs on the instance's own copy only if it still owns the call, else on one
rebuilt from the stored state; the latest answer and its number are kept in Redis, so a retry gets it
anywhere; the prompts' token is an HMAC of the call id, alike on every instance.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy

from adapter.api_errors import ApiError
from adapter.app_state import CALLS, CLOCK, CONVERSATION, LIMITS, METRICS, SERVICE
from adapter.audio.decode import decode_audio
from adapter.audio.encode import FORMATS
from adapter.audio.errors import AudioError
from adapter.calls.events import InputEvent, KeysIn, Listening, NoInput, TextIn, UtteranceIn
from adapter.calls.info import CallInfo
from adapter.calls.keypad import DTMF_KEYS, MAX_DIGITS
from adapter.calls.phase import Phase
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.conversation.store import CallState
from adapter.doors.open_call import TooManyCalls, open_call, resume_call
from adapter.doors.rest_calls import KeptAnswer, RestCall, RestCalls, TurnResult, share_calls
from adapter.doors.twilio import twiml
from adapter.doors.twilio.call_sid import call_sid, user_id
from adapter.doors.twilio.media import connect_response
from adapter.doors.twilio.recordings import (
    RecordingFetcher,
    RecordingNotStored,
    RecordingUnavailable,
    holds_input,
    loggable,
)
from adapter.doors.twilio.settings import TWILIO
from adapter.doors.twilio.signature import base_url, verified_params
from adapter.json_log import CALL_ID
from adapter.stage_timing import StageTimes

log = logging.getLogger(__name__)

DOOR = "twilio"
Answer = Callable[[int], Awaitable[str]]  # makes the TwiML of answer number n
# Whole recordings in (Twilio records 8 kHz); prompts out as μ-law WAV, which <Play> takes as it is.
TWILIO_AUDIO = AudioSpec(in_rate=8000, out_format="wav-ulaw8k", live=False)
PLAY_FORMAT = FORMATS[TWILIO_AUDIO.out_format]
# CallStatus values that mean the call is over (specs/telephony.md §1.1, §1.4).
ENDED_BY_STATUS = {"completed": "caller hung up", "busy": "line busy", "no-answer": "no answer",
                   "failed": "call failed", "canceled": "call canceled"}
CALL_GONE = "Sorry, this call cannot go on. Please call again. Goodbye."
# What `RestCalls.current` says of a call no instance runs (any more).
GONE = ("unknown_call", "call_ended")


# --- calls -----------------------------------------------------------------------------------------


class TwilioCall(RestCall):
    """A TwiML call: numbered answers (see the module docstring), reply audio under an unguessable
    token (Twilio's media player fetches it unsigned), and what the latest answer collects."""

    def __init__(self, conversation: Conversation, times: StageTimes, app: web.Application) -> None:
        service = app[SERVICE]
        super().__init__(conversation, times, app[METRICS], app[CLOCK], service.turns_per_minute, service.call_idle_s)
        auth_token = app[TWILIO].auth_token
        assert auth_token is not None, "webhooks are verified with it before any call starts"
        self.token = audio_token(auth_token.reveal(), self.id)
        self.listening = Listening(conversation.state.expect, conversation.state.menu)  # rebuilt: as stored
        self.answers = 0
        self._answer: asyncio.Future[str] | None = None

    @property
    def audio_key(self) -> str:
        return audio_key(self.token)

    async def answer(self, follows: int | None, make: Answer) -> str | None:
        """The TwiML for a webhook that follows answer number `follows` (None: not said): `make(n)`
        makes answer `n` for new input; a retry gets the latest answer. None: new input on an ended call.

        Raises:
            ApiError: 400 `follows` names an answer not made yet.
        """
        if self.shared is not None:
            await self._catch_up()
        if follows is not None and follows > self.answers:
            raise ApiError(400, "bad_request", f'"t" names answer {follows}; this call has had {self.answers}')
        running = self._answer is not None and not self._answer.done()
        if self._answer is not None and (running or (follows is not None and follows < self.answers)):
            return await self.latest()
        if self.ended:
            return None
        self.answers += 1
        self._answer = asyncio.create_task(self._made(self.answers, make),
                                           name=f"twilio answer {self.id} {self.answers}")
        return await self.latest()

    async def latest(self) -> str:
        """The latest answer, once made (a retry's handler may go; the answer is still made)."""
        assert self._answer is not None, "a call has its welcome from the start"
        return await asyncio.shield(self._answer)

    async def _made(self, number: int, make: Answer) -> str:
        text = await make(number)
        if self.shared is not None:
            await self.shared.keep_answer(self.id, KeptAnswer(number, text))
        return text

    async def _catch_up(self) -> None:
        """Take the cluster's latest answer when another instance made it after this copy's."""
        assert self.shared is not None
        kept = await self.shared.kept_answer(self.id)
        if kept is not None and kept.number > self.answers:
            self.answers = kept.number
            self._answer = asyncio.get_running_loop().create_future()
            self._answer.set_result(kept.text)


TWILIO_CALLS = web.AppKey("twilio_calls", RestCalls)
RECORDINGS = web.AppKey("twilio_recordings", RecordingFetcher)


def audio_key(token: str) -> str:
    """The registry key a call's reply audio is found by (never a call id, which a caller may know)."""
    return f"audio/{token}"


def audio_token(auth_token: str, call_id: str) -> str:
    """A call's prompt-audio token: an HMAC of its id under the account's Auth Token, so every instance
    names the call's prompts alike and nobody without the Auth Token can guess them (32 URL-safe characters)."""
    mac = hmac.new(auth_token.encode(), b"kore-voice prompt audio " + call_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode()


# --- parsing --------------------------------------------------------------------------------------


def parse_keys(value: str, name: str) -> str:
    """Keypad keys as Twilio reports them (`Digits`), possibly none."""
    if len(value) > MAX_DIGITS or any(k not in DTMF_KEYS for k in value):
        raise ApiError(400, "bad_request", f'"{name}" must be at most {MAX_DIGITS} keypad keys: 0-9, * and #')
    return value


def parse_follows(query: Mapping[str, str]) -> int | None:
    """`t`: the number of the answer whose action URL this is."""
    value = query.get("t")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        raise ApiError(400, "bad_request", '"t" must be an answer number')
    return int(value)


def parse_confidence(value: str | None) -> float | None:
    """Twilio's speech `Confidence` (0-1), which it may leave out."""
    if not value:
        return None
    try:
        confidence = float(value)
    except ValueError:
        confidence = float("nan")
    if not 0.0 <= confidence <= 1.0:
        raise ApiError(400, "bad_request", '"Confidence" must be a number from 0 to 1')
    return confidence


def parse_recording_url(value: str) -> str:
    if value and not value.startswith(("https://", "http://")):
        raise ApiError(400, "bad_request", '"RecordingUrl" must be an http(s) URL')
    return value


# --- answers --------------------------------------------------------------------------------------



def _call_gone() -> web.Response:
    return twiml.http_response(twiml.goodbye(CALL_GONE))


def timeouts(app: web.Application) -> twiml.Timeouts:
    c = app[CONVERSATION]
    return twiml.Timeouts.of(c.no_input_s, c.inter_digit_s, app[TWILIO].record_silence_s, app[LIMITS].max_seconds)


def _render(request: web.Request, call: TwilioCall, result: TurnResult, answer: int) -> str:
    if isinstance(result.end, Listening):
        call.listening = result.end
    base = base_url(request)
    audio_url = None if result.audio is None else f"{base}/twilio/audio/{call.token}/{result.audio}.wav"
    times = call.times.take()
    log.debug("call %s: answer %d in %s", call.id, answer, ", ".join(f"{k} {v:.3f} s" for k, v in times.items()))
    return str(twiml.reply(result, audio_url, twiml.Actions(base, answer), timeouts(request.app),
                           twilio_speech=request.app[TWILIO].speech == "gather"))


def _rebuild(app: web.Application) -> Callable[[CallState], TwilioCall]:
    """How a TwiML call another instance ran is rebuilt here (shared state)."""

    def rebuild(state: CallState) -> TwilioCall:
        if state.call.door != DOOR:  # a media stream's: it stays on the instance holding its socket
            raise ApiError(404, "unknown_call", "the call is not a TwiML call")
        times = StageTimes(app[METRICS].observe)
        try:
            return TwilioCall(resume_call(app, state, TWILIO_AUDIO, times), times, app)
        except TooManyCalls as exc:
            raise ApiError(503, "busy", str(exc), {"Retry-After": "5"}) from None

    return rebuild


async def _respond(request: web.Request, key: str, follows: int | None,
                   answer_for: Callable[[TwilioCall], Answer]) -> web.Response:
    """The answer to a follow-up webhook of call `key`, made by `answer_for(call)` on whichever copy runs
    it now; an unknown or ended call is told so and hung up (a retry of its last answer still gets it)."""
    calls = request.app[TWILIO_CALLS]
    async with calls.held(key, wait=True):
        try:
            call = await calls.current(key, _rebuild(request.app))
            answer = await call.answer(follows, answer_for(call))
        except ApiError as exc:
            if exc.code not in GONE:  # GONE: no call, or it ended (perhaps while this input was on its way)
                raise
            kept = await _kept(calls, key)
            retry = kept is not None and follows is not None and follows < kept.number
            answer = kept.text if retry else None
    return _call_gone() if answer is None else twiml.http_response(answer)


async def _kept(calls: RestCalls[TwilioCall], key: str) -> KeptAnswer | None:
    """The call's latest answer as the cluster keeps it (none without shared state)."""
    return None if calls.shared is None else await calls.shared.kept_answer(key)


def _turn(request: web.Request, call: TwilioCall, heard: Callable[[], Awaitable[InputEvent]]) -> Answer:
    """Make an answer from one caller turn: `heard()` is the input (e.g. a fetched recording). Input the
    call cannot take now (over KORE_VOICE_TURNS_PER_MINUTE, or the bot still answering) is dropped and
    the caller listened to again: an error page would make Twilio end the call."""

    async def make(answer: int) -> str:
        try:
            with call.turn():
                event = await heard()
                phase = call.conversation.phase
                if phase not in (Phase.LISTENING, Phase.CLOSED):
                    raise ApiError(409, "not_listening", f"the call is not waiting for the caller ({phase})")
                call.conversation.send(event)
                result = await call.collect()
        except ApiError as exc:
            if exc.code == "call_ended":
                raise
            log.warning("call %s: input dropped: %s", call.id, exc.message)
            result = TurnResult(end=call.listening)
        return _render(request, call, result, answer)

    return make


def _given(event: InputEvent) -> Callable[[], Awaitable[InputEvent]]:
    async def heard() -> InputEvent:
        return event

    return heard


# A recording we cannot use is speech we did not catch: "Sorry, I didn't catch that." and listen again,
# until KORE_VOICE_MAX_NO_MATCH (adapter/conversation/call.py `_on_heard`).
NOT_CAUGHT = TextIn("")


# --- handlers -------------------------------------------------------------------------------------


async def _webhook(request: web.Request) -> tuple[MultiDictProxy[str], str, int | None]:
    """A signed webhook's parameters, its call's id and the answer it follows."""
    params = await verified_params(request, request.app[TWILIO], request.app[SERVICE].public_url)
    key = user_id(call_sid(params))
    CALL_ID.set(key)  # this webhook's lines name its call
    return params, key, parse_follows(request.query)


async def voice(request: web.Request) -> web.Response:
    """The number's voice URL: a new call's welcome, or for a retry the answer already made."""
    params, key, _ = await _webhook(request)
    app = request.app
    if app[TWILIO].mode == "media-streams":
        return twiml.http_response(connect_response(request, params))
    calls = app[TWILIO_CALLS]
    async with calls.held(key, wait=True):
        retried = await _latest(calls, key)
        if retried is not None:  # Twilio retried: never a second conversation for one CallSid
            return twiml.http_response(retried)
        times = StageTimes(app[METRICS].observe)
        info = CallInfo(key, params.get("From") or None, params.get("To") or None, DOOR)
        try:
            conversation = open_call(app, info, TWILIO_AUDIO, times)
        except TooManyCalls as exc:
            log.warning("call %s: declined as busy: %s", key, exc)
            return twiml.http_response(twiml.busy())
        call = TwilioCall(conversation, times, app)
        calls.add(call)
        answer = await call.answer(None, _welcome(request, call))
    return _call_gone() if answer is None else twiml.http_response(answer)


async def _latest(calls: RestCalls[TwilioCall], key: str) -> str | None:
    """The latest answer of a call already started, here or (shared state) on any instance; None: a new call."""
    kept = await _kept(calls, key)
    if kept is not None:
        return kept.text
    call = calls.get(key)
    return None if call is None else await call.latest()


def _welcome(request: web.Request, call: TwilioCall) -> Answer:
    async def make(answer: int) -> str:
        result = await call.collect()
        call.touch()
        return _render(request, call, result, answer)

    return make


async def _recorded(request: web.Request, call: TwilioCall, url: str, account_sid: str | None) -> InputEvent:
    """The fetched recording as an utterance. A recording never stored, or holding neither voiced
    speech nor keys (Twilio saves silent ones), is no input; one we cannot get or decode is speech
    not caught. Either is said in the log."""
    try:
        data, content_type = await request.app[RECORDINGS].fetch(url, account_sid)
        with call.times.measure("decode"):
            pcm = await asyncio.to_thread(decode_audio, data, content_type, request.app[LIMITS])
            heard = await asyncio.to_thread(holds_input, pcm)
    except RecordingNotStored as exc:
        log.info("call %s: no input: the recording %s was never stored (%s)", call.id, loggable(url), exc)
        return NoInput()
    except (RecordingUnavailable, AudioError) as exc:
        reason = exc.reason if isinstance(exc, AudioError) else str(exc)
        log.warning("call %s: cannot use the recording %s: %s", call.id, loggable(url), reason)
        return NOT_CAUGHT
    if not heard:
        log.info("call %s: no input: the recording %s holds no speech", call.id, loggable(url))
        return NoInput()
    return UtteranceIn(pcm)


def recorded_nothing(params: Mapping[str, str]) -> bool:
    """Whether the action request itself says the recording is empty: `RecordingStatus` `absent`, or
    a `RecordingDuration` of 0 s (or Twilio's -1 for none)."""
    duration = params.get("RecordingDuration", "")
    if duration and not re.fullmatch(r"-?[0-9]{1,9}", duration):
        raise ApiError(400, "bad_request", '"RecordingDuration" must be whole seconds')
    return params.get("RecordingStatus") == "absent" or (bool(duration) and int(duration) <= 0)


async def recording(request: web.Request) -> web.Response:
    """While listening for speech: a recording, the key that ended it or cut the prompt, or no input."""
    params, key, follows = await _webhook(request)
    digits = params.get("Digits", "")
    url = parse_recording_url(params.get("RecordingUrl", ""))
    if digits == "hangup":  # the caller hung up while recording: nobody is left to answer the bot
        await _hang_up(request, key, "caller hung up")
        return twiml.http_response(twiml.hang_up())
    first = parse_keys(digits, "Digits")
    if len(first) > 1:
        raise ApiError(400, "bad_request", '"Digits" on a recording is the one key that ended it')
    if first:
        return await _respond(request, key, follows, lambda call: _first_key(request, call, first))
    if not url or recorded_nothing(params):
        return await _respond(request, key, follows, lambda call: _turn(request, call, _given(NoInput())))
    account_sid = params.get("AccountSid")
    return await _respond(request, key, follows,
                          lambda call: _turn(request, call, lambda: _recorded(request, call, url, account_sid)))


def _first_key(request: web.Request, call: TwilioCall, key: str) -> Answer:
    """A key while listening for speech: the whole entry, or the start of one whose rest we gather."""
    complete = _turn(request, call, _given(KeysIn(key)))

    async def make(answer: int) -> str:
        if twiml.first_key_ends_entry(call.listening, key):
            return await complete(answer)
        call.touch()
        actions = twiml.Actions(base_url(request), answer)
        return str(twiml.rest_of_entry(call.listening, key, actions, timeouts(request.app)))

    return make


async def gather(request: web.Request) -> web.Response:
    """A `<Gather>`'s result: keys (after those of `?keys=`, typed while we listened for speech),
    Twilio's own transcript (`input="speech"`), or nothing: no input."""
    params, key, follows = await _webhook(request)
    keys = parse_keys(request.query.get("keys", ""), "keys") + parse_keys(params.get("Digits", ""), "Digits")
    speech = params.get("SpeechResult", "").strip()
    confidence = parse_confidence(params.get("Confidence"))
    event = TextIn(speech, confidence) if speech else KeysIn(keys) if keys else NoInput()
    return await _respond(request, key, follows, lambda call: _turn(request, call, _given(event)))


async def status(request: web.Request) -> web.Response:
    """Status callbacks: a call that is over ends its conversation (`SESSION_CLOSURE` once), whichever
    mode carried it and (TwiML, shared state) whichever instance runs it; repeats, other statuses and
    unknown calls change nothing."""
    params, key, _ = await _webhook(request)
    reason = ENDED_BY_STATUS.get(params.get("CallStatus", ""))
    if reason is None:
        return web.Response(status=204)
    conversation = request.app[CALLS].get(key)
    if conversation is not None and conversation.call.door != DOOR:  # a media stream's, on this instance
        await conversation.hang_up(reason)
    else:
        await _hang_up(request, key, reason)
    return web.Response(status=204)


async def _hang_up(request: web.Request, key: str, reason: str) -> None:
    """End TwiML call `key` on whichever copy runs it now; an unknown or ended one: nothing to do."""
    calls = request.app[TWILIO_CALLS]
    async with calls.held(key, wait=True):
        try:
            call = await calls.current(key, _rebuild(request.app))
        except ApiError as exc:
            if exc.code not in GONE:
                raise
            return
        await call.conversation.hang_up(reason)


async def audio(request: web.Request) -> web.Response:
    """A reply's audio for Twilio's media player (unsigned: the token is the key), whichever instance made it."""
    reply = await request.app[TWILIO_CALLS].kept_reply(audio_key(request.match_info["token"]),
                                                      int(request.match_info["n"]))
    if reply is None:
        raise ApiError(404, "unknown_audio", "no such reply audio (ended calls keep theirs for a while)")
    return web.Response(body=await reply.encoded(PLAY_FORMAT), content_type=PLAY_FORMAT.content_type)


async def _recording_client(app: web.Application) -> AsyncIterator[None]:
    """Its own HTTP session: recordings are fetched with Twilio credentials, nothing else is."""
    async with aiohttp.ClientSession() as session:
        app[RECORDINGS] = RecordingFetcher(session, app[TWILIO], app[LIMITS], app[CLOCK])
        yield


def add_routes(app: web.Application) -> None:
    app[TWILIO_CALLS] = RestCalls(app[CLOCK])
    app.on_startup.append(lambda app: share_calls(app, app[TWILIO_CALLS]))
    app.cleanup_ctx.append(_recording_client)
    app.router.add_post("/twilio/voice", voice)
    app.router.add_post(twiml.RECORDING_PATH, recording)
    app.router.add_post(twiml.GATHER_PATH, gather)
    app.router.add_post("/twilio/status", status)
    app.router.add_get(r"/twilio/audio/{token:[A-Za-z0-9_-]{32}}/{n:\d{1,9}}.wav", audio)

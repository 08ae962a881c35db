"""The generic telephony door over REST: a call is a resource, each caller turn one request.

`POST /v1/calls` starts a call and answers the bot's welcome; `POST /v1/calls/{id}/turns` takes a
whole utterance (any audio type we decode, raw or as a multipart upload) or keypad digits and answers
the bot's reply as JSON, or as audio when `Accept` asks for it; `GET /v1/calls/{id}/audio/{n}` serves a
reply in any output format; `DELETE /v1/calls/{id}` hangs up. Statuses: adapter/doors/openapi.json.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

from aiohttp import BodyPartReader, MultipartReader, web

from adapter.api_errors import ApiError
from adapter.app_state import CLOCK, LIMITS, METRICS, SERVICE, TTS
from adapter.audio.decode import decode_audio, parse_content_type, sniff
from adapter.audio.encode import FORMATS, OutputFormat, format_for_content_type
from adapter.audio.errors import AudioTooLarge
from adapter.audio.limits import AudioLimits
from adapter.audio.pcm import Pcm
from adapter.calls.events import BotFailed, KeysIn, Transfer, UtteranceIn
from adapter.calls.info import CallInfo
from adapter.calls.keypad import DTMF_KEYS, MAX_DIGITS, ExpectedInput
from adapter.calls.phase import Phase
from adapter.calls.replies import Menu
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.conversation.store import CallState
from adapter.doors.open_call import TooManyCalls, open_call, resume_call
from adapter.doors.rest_calls import DOOR, ReplyAudio, RestCall, RestCalls, TurnResult, share_calls
from adapter.json_body import JsonBodyError, load_json
from adapter.json_log import CALL_ID
from adapter.stage_timing import StageTimes

log = logging.getLogger(__name__)

# Whole utterances in, prompts out as 16 kHz WAV (the best we make); other formats are encoded from it.
REST_AUDIO = AudioSpec(in_rate=16000, out_format="wav16k", live=False)
DEFAULT_AUDIO = FORMATS["wav16k"]
MAX_NUMBER_CHARS = 128
MAX_AUDIO_NUMBER_DIGITS = 9  # reply audio numbers count turns: far fewer digits than int() refuses
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
REST_CALLS = web.AppKey("rest_calls", RestCalls)

# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewCall:
    caller: str
    called: str
    language: str | None = None


def json_object(body: bytes | str) -> dict[str, Any]:
    try:
        value = load_json(body)
    except JsonBodyError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return value


def parse_new_call(body: dict[str, Any], language: str) -> NewCall:
    """`{"from", "to", "language"?}`; `language` must be the one the service speaks (e.g. `en`)."""
    numbers = []
    for key in ("from", "to"):
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ApiError(400, "bad_request", f'"{key}" must be a non-empty string (a number or SIP URI)')
        if len(value) > MAX_NUMBER_CHARS or not value.isprintable():
            raise ApiError(400, "bad_request", f'"{key}" must be one printable line of at most '
                           f"{MAX_NUMBER_CHARS} characters")
        numbers.append(value.strip())
    asked = body.get("language")
    if asked is not None:
        if not isinstance(asked, str) or not _LANGUAGE.match(asked):
            raise ApiError(400, "bad_request", '"language" must be a language tag such as "en-US"')
        if asked.split("-")[0].lower() != language:
            raise ApiError(400, "unsupported_language", f"this service speaks {language!r}, not {asked!r}")
    return NewCall(numbers[0], numbers[1], asked)


def spoken_language(voice: str) -> str:
    """The primary language of an espeak-ng voice setting: `en-us+f3` and `gmw/en-US` both speak `en`."""
    return voice.rsplit("/", 1)[-1].split("+")[0].split("-")[0].lower()


def parse_digits(value: object) -> str:
    """Keypad keys as typed (`"1234#"`); spaces are ignored."""
    digits = "".join(value.split()) if isinstance(value, str) else ""
    if not digits or len(digits) > MAX_DIGITS or any(k not in DTMF_KEYS for k in digits):
        raise ApiError(400, "bad_request", f'"digits" must be 1 to {MAX_DIGITS} keypad keys: 0-9, * and #')
    return digits


def accepted(header: str) -> list[str]:
    """The media ranges of an Accept header, best first (q=0 dropped, ties in the order given)."""
    ranges = []
    for i, item in enumerate(header.split(",")):
        media, params = parse_content_type(item)
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if media and q > 0:
            rest = "".join(f";{k}={v}" for k, v in params.items())
            ranges.append((-q, i, media + rest))
    return [media for *_, media in sorted(ranges)]


def reply_format(accept: str) -> OutputFormat | None:
    """The audio a turn is answered with, or None for JSON (the default)."""
    for media in accepted(accept):
        if media == "audio/*":
            return DEFAULT_AUDIO
        if media.startswith("audio/") and (fmt := format_for_content_type(media)):
            return fmt
        if media in ("application/json", "application/*", "*/*"):
            return None
    return None


def audio_format(accept: str | None, name: str | None) -> OutputFormat:
    """The format to serve reply audio in: `?format=NAME`, else the best audio type `Accept` names."""
    if name is not None:
        if name not in FORMATS:
            raise ApiError(400, "bad_request", f"unknown format {name!r}; use one of {', '.join(FORMATS)}")
        return FORMATS[name]
    if not accept:
        return DEFAULT_AUDIO
    for media in accepted(accept):
        if media in ("audio/*", "*/*"):
            return DEFAULT_AUDIO
        if fmt := format_for_content_type(media):
            return fmt
    raise ApiError(406, "not_acceptable", "none of the accepted types is audio we make; try audio/wav, "
                   "audio/basic, audio/PCMA, audio/L16 or audio/mpeg, or ?format=NAME")


# --- answers --------------------------------------------------------------------------------------


def menu_json(menu: Menu | None) -> list[dict[str, str]] | None:
    return [{"digit": o.digit, "label": o.label} for o in menu.options] if menu else None


def expect_json(expect: ExpectedInput | None) -> dict[str, Any] | None:
    if expect is None:
        return None
    digits = expect.digits
    return {"speech": expect.speech,
            "digits": None if digits is None else {"num": digits.num, "min": digits.min, "max": digits.max,
                                                   "finish_on_key": digits.finish_on_key}}


def reply_json(result: TurnResult, audio_url: str | None) -> dict[str, Any]:
    """The bot's part of an answer: texts and menu, the spoken prompts, and how the call goes on."""
    menus = [s.menu for s in result.said if s.menu is not None]
    return {
        "texts": [text for said in result.said for text in said.texts],
        "menu": menu_json(menus[-1] if menus else None),
        "spoken": [play.text for play in result.plays],
        "audio_url": audio_url,
        "expect": expect_json(getattr(result.end, "expect", None)),
        "end_of_call": result.end_of_call,
        "transfer_to": result.end.to if isinstance(result.end, Transfer) else None,
    }


def turn_json(result: TurnResult, sent: str, audio_url: str | None) -> dict[str, Any]:
    heard = result.heard
    reply = reply_json(result, audio_url)
    return {"transcript": heard.text if heard else "", "input": heard.input if heard else sent,
            "digits": heard.digits if heard else "",
            "bot": {"texts": reply.pop("texts"), "menu": reply.pop("menu")}, **reply}


def bot_error(failed: BotFailed, call_id: str) -> ApiError:
    """A failed bot request as callers see it: a generic message and an error id. The reason (which may
    name the bot's address, or quote what the bot said) goes only to the log, under the same id."""
    error_id = secrets.token_hex(6)
    log.warning("call %s: bot %s, error id %s: %s", call_id, "timeout" if failed.timeout else "error", error_id,
                failed.reason)
    headers = {"X-Error-Id": error_id}
    if failed.timeout:
        return ApiError(504, "bot_timeout", f"the bot did not answer in time; error id {error_id}", headers)
    return ApiError(502, "bot_error", f"the bot failed; error id {error_id}", headers)


def server_timing(times: Mapping[str, float]) -> str:
    return ", ".join(f"{stage};dur={seconds * 1000:.1f}" for stage, seconds in times.items())


# --- handlers -----------------------------------------------------------------------------------


def _audio_url(request: web.Request, call: RestCall, number: int | None) -> str | None:
    if number is None:
        return None
    base = request.app[SERVICE].public_url or str(request.url.origin())
    return f"{base}/v1/calls/{call.id}/audio/{number}"


def _finish(call: RestCall, started: float) -> dict[str, float]:
    call.times.add("total", time.perf_counter() - started)
    return call.times.take()


def _rest_call(app: web.Application, conversation: Conversation, times: StageTimes) -> RestCall:
    return RestCall(conversation, times, app[METRICS], app[CLOCK], app[SERVICE].turns_per_minute,
                    app[SERVICE].call_idle_s)


def _rebuild(app: web.Application) -> Callable[[CallState], RestCall]:
    """How a call another instance ran is rebuilt here (shared state)."""

    def rebuild(state: CallState) -> RestCall:
        times = StageTimes(app[METRICS].observe)
        try:
            return _rest_call(app, resume_call(app, state, REST_AUDIO, times), times)
        except TooManyCalls as exc:
            raise ApiError(503, "busy", str(exc), {"Retry-After": "5"}) from None

    return rebuild


async def create_call(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app = request.app
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media", 'send the new call as application/json {"from", "to"}')
    new = parse_new_call(json_object(await request.read()), spoken_language(app[TTS].voice))
    times = StageTimes(app[METRICS].observe)
    try:
        conversation = open_call(app, CallInfo.new(DOOR, new.caller, new.called), REST_AUDIO, times)
    except TooManyCalls as exc:
        raise ApiError(503, "busy", str(exc), {"Retry-After": "5"}) from None
    CALL_ID.set(conversation.call.user_id)  # this request's lines (its access line too) name the new call
    call = _rest_call(app, conversation, times)
    app[REST_CALLS].add(call)
    try:
        result = await call.collect()
        if result.failed is not None:
            raise bot_error(result.failed, call.id)
    except BaseException:  # no id was given out: nobody could ever end this call
        await call.conversation.hang_up("the call could not start")
        raise
    call.touch()
    body = {"id": call.id, "welcome": reply_json(result, _audio_url(request, call, result.audio))}
    timing = server_timing(_finish(call, started))
    return web.json_response(body, status=201, headers={"Location": f"/v1/calls/{call.id}", "Server-Timing": timing})


async def _read_multipart(request: web.Request, limits: AudioLimits) -> tuple[bytes, str | None] | str:
    """The uploaded audio and its type, or the `Digits` field, from a multipart/form-data body."""
    if "boundary" not in parse_content_type(request.headers.get("Content-Type", ""))[1]:
        raise ApiError(400, "bad_request", "multipart/form-data needs its boundary parameter")
    try:
        return await _first_part(await request.multipart(), limits)
    except AudioTooLarge:
        raise
    except (ValueError, LookupError):  # aiohttp's parser: a bad boundary, charset or part
        raise ApiError(400, "bad_request", "the multipart body is malformed (its boundary, a part's headers "
                       "or a text field's charset)") from None


async def _first_part(reader: MultipartReader, limits: AudioLimits) -> tuple[bytes, str | None] | str:
    """The first audio file part or `Digits` field of a multipart body."""
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name in ("digits", "Digits"):
            return parse_digits(await part.text())
        if part.filename or part.name in ("audio", "file"):
            data = bytearray()
            while chunk := await part.read_chunk():
                data += chunk
                if len(data) > limits.max_bytes:
                    raise AudioTooLarge(f"audio is over the {limits.max_bytes}-byte limit")
            return bytes(data), part.headers.get("Content-Type")
    raise ApiError(400, "bad_request", 'the multipart body has no audio file part (e.g. "audio") and no "Digits"')


def form_digits(body: bytes) -> str | None:
    """`Digits=…` from a form body. Audio sent as a form is what `curl -d @file` does by default: say so.

    Raises:
        ApiError: 415 the body is audio or is not text.
    """
    if not body.isascii() or sniff(body) is not None:
        raise ApiError(415, "unsupported_media", "this form body looks like audio: send audio with "
                       "Content-Type: audio/wav (curl --data-binary @file -H 'Content-Type: audio/wav')")
    form = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    return form.get("Digits", form.get("digits"))


async def read_entry(request: web.Request, limits: AudioLimits, times: StageTimes) -> Pcm | str:
    """The caller's turn: decoded audio, or the keys typed."""
    if request.content_type == "application/json":
        return parse_digits(json_object(await request.read()).get("digits"))
    if request.content_type == "application/x-www-form-urlencoded":
        return parse_digits(form_digits(await request.read()))
    if request.content_type == "multipart/form-data":
        upload = await _read_multipart(request, limits)
        if isinstance(upload, str):
            return upload
        data, content_type = upload
    else:
        data, content_type = await request.read(), request.headers.get("Content-Type")
    with times.measure("decode"):
        return await asyncio.to_thread(decode_audio, data, content_type, limits)


async def post_turn(request: web.Request) -> web.Response:
    started = time.perf_counter()
    calls, key = request.app[REST_CALLS], request.match_info["call_id"]
    async with calls.held(key):
        call = await calls.current(key, _rebuild(request.app))
        return await _take_turn(request, call, started)


async def _take_turn(request: web.Request, call: RestCall, started: float) -> web.Response:
    with call.turn():
        call.times.take()  # whatever was measured between turns is not this turn's
        entry = await read_entry(request, request.app[LIMITS], call.times)
        if call.conversation.phase != Phase.LISTENING:
            raise ApiError(429, "turn_in_progress", "the call is not waiting for the caller yet",
                           {"Retry-After": "1"})
        call.conversation.send(KeysIn(entry) if isinstance(entry, str) else UtteranceIn(entry))
        result = await call.collect()
        if result.failed is not None:
            raise bot_error(result.failed, call.id)
        audio_url = _audio_url(request, call, result.audio)
        fmt = reply_format(request.headers.get("Accept", ""))
        if fmt is None:
            body = turn_json(result, "dtmf" if isinstance(entry, str) else "speech", audio_url)
            return web.json_response(body, headers={"Server-Timing": server_timing(_finish(call, started))})
        audio = await call.audio(result.audio) if result.audio is not None else ReplyAudio([])
        data = await audio.encoded(fmt)
        headers = {"Content-Type": fmt.content_type_for(audio.rate), "X-End-Of-Call": str(result.end_of_call).lower(),
                   "X-Transcript": quote(result.heard.text if result.heard else "")}
        if isinstance(result.end, Transfer):
            headers["X-Transfer-To"] = quote(result.end.to, safe=":@+;=/.,_~-")
        headers["Server-Timing"] = server_timing(_finish(call, started))
        return web.Response(body=data, headers=headers)


def audio_number(text: str) -> int:
    """The `n` of `/audio/{n}` (the router lets only digits through)."""
    if len(text) > MAX_AUDIO_NUMBER_DIGITS:
        raise ApiError(404, "unknown_audio", "no reply audio has a number that long")
    return int(text)


async def get_audio(request: web.Request) -> web.Response:
    calls, key = request.app[REST_CALLS], request.match_info["call_id"]
    if calls.ended_long_ago(key):
        raise ApiError(404, "unknown_audio", "the call has ended and its reply audio is gone")
    fmt = audio_format(request.headers.get("Accept"), request.query.get("format"))
    audio = await calls.reply_audio(key, audio_number(request.match_info["n"]))
    data = await audio.encoded(fmt)
    return web.Response(body=data, headers={"Content-Type": fmt.content_type_for(audio.rate)})


async def delete_call(request: web.Request) -> web.Response:
    """Hang up. Phone systems send this on every hang-up, also when the bot ended the call: 204 then too."""
    calls = request.app[REST_CALLS]
    key = request.match_info["call_id"]
    if not calls.ended_long_ago(key):
        async with calls.held(key, wait=True):
            try:
                call = await calls.current(key, _rebuild(request.app))
            except ApiError as exc:
                if exc.code != "call_ended":  # ended on another instance: 204 as here
                    raise
                return web.Response(status=204)
            await call.conversation.hang_up("caller hung up")
            await call.drop_audio()
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app[REST_CALLS] = RestCalls(app[CLOCK])
    app.on_startup.append(lambda app: share_calls(app, app[REST_CALLS]))
    app.router.add_post("/v1/calls", create_call)
    app.router.add_post("/v1/calls/{call_id}/turns", post_turn)
    app.router.add_get(r"/v1/calls/{call_id}/audio/{n:\d+}", get_audio)
    app.router.add_delete("/v1/calls/{call_id}", delete_call)

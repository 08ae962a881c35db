"""Twilio Media Streams messages (specs/telephony.md §2.2-2.3): parsed into small typed values, and
written back as the JSON text frames Twilio takes. No sockets here.

A message that breaks the protocol raises `SocketError` with the WebSocket close code that fits it
(RFC 6455 §7.4.1): 1003 for a binary frame, 1009 for an oversize one, 1008 for anything else (text
that is not JSON, or nests deeper than any Twilio message, included). An event we do not know (Twilio adds
events) or a `dtmf` key we do not know is `Ignored`: the stream goes on.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode

from adapter.api_errors import ApiError
from adapter.doors.socket_messages import (
    Dtmf,
    Ignored,
    SocketError,
    compact_json,
    key_pressed,
    load_object,
    unknown_event,
)
from adapter.doors.twilio.call_sid import call_sid

#: Twilio sends 160 bytes; a second of audio in one message is no stream of theirs
MAX_MEDIA_BYTES = 8000
#: the longest text frame we read (a `start` with custom parameters is under 2 kB)
MAX_MESSAGE_CHARS = 16 * 1024
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
_STREAM_SID = re.compile(r"^[A-Za-z0-9]{2,64}$")
_MARK_PREFIX = "prompt-"
#: a Media Streams message nests four levels at most (start.mediaFormat); this leaves room for new fields
MAX_DEPTH = 16
_KNOWN = ("connected", "start", "media", "dtmf", "mark", "stop")


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    parameters: dict[str, str]


@dataclass(frozen=True, slots=True)
class Media:
    ulaw: bytes


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    pass


Message = Connected | Start | Media | Dtmf | Mark | Stop | Ignored


# --- in -----------------------------------------------------------------------------------------


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SocketError(f"{what} must be a JSON object")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise SocketError(f"{what} must be a non-empty string")
    return value


def parse_message(text: str, stream_sid: str | None) -> Message:
    """One text frame; `stream_sid` is the stream's id once `start` has come (None before).

    Raises:
        SocketError: not JSON (or nested too deep), no event name, a missing or wrong field, another
            stream's id, audio or keys before `start`, a second `start`, or an oversize frame.
    """
    message = load_object(text, MAX_MESSAGE_CHARS, MAX_DEPTH)
    event = message.get("event")
    if not isinstance(event, str) or not event:
        raise SocketError("a message must name its event")
    if event not in _KNOWN:
        return unknown_event(event)
    if event == "connected":
        if stream_sid is not None:
            raise SocketError("connected after start")
        return Connected()
    if event == "start":
        if stream_sid is not None:
            raise SocketError("a second start on one stream")
        return _start(message)
    if stream_sid is None:
        raise SocketError(f"{event} before start")
    if message.get("streamSid") != stream_sid:
        raise SocketError(f"{event} for another stream ({str(message.get('streamSid'))[:40]!r})")
    if event == "media":
        return Media(_payload(_object(message.get("media"), "media")))
    if event == "dtmf":
        return key_pressed(_object(message.get("dtmf"), "dtmf").get("digit"))
    if event == "mark":
        return Mark(_text(_object(message.get("mark"), "mark").get("name"), "mark.name"))
    return Stop()


def _start(message: dict[str, Any]) -> Start:
    start = _object(message.get("start"), "start")
    stream_sid = _text(start.get("streamSid", message.get("streamSid")), "start.streamSid")
    if not _STREAM_SID.match(stream_sid):
        raise SocketError("start.streamSid is not a stream id")
    try:
        sid = call_sid({"CallSid": str(start.get("callSid", ""))})
    except ApiError:
        raise SocketError("start.callSid is not a Twilio call id") from None
    fmt = _object(start.get("mediaFormat"), "start.mediaFormat")
    if {k: str(fmt.get(k)) for k in MEDIA_FORMAT} != {k: str(v) for k, v in MEDIA_FORMAT.items()}:
        raise SocketError(f"the stream's media format is {fmt}, not μ-law 8000 Hz mono")
    parameters = _object(start.get("customParameters", {}), "start.customParameters")
    return Start(stream_sid, sid, {str(k): str(v) for k, v in parameters.items()})


def _payload(media: dict[str, Any]) -> bytes:
    payload = _text(media.get("payload"), "media.payload")
    if len(payload) > MAX_MEDIA_BYTES * 4 // 3 + 4:
        raise SocketError(f"a media payload is at most {MAX_MEDIA_BYTES} bytes", WSCloseCode.MESSAGE_TOO_BIG)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise SocketError("media.payload is not base64") from None


# --- out ----------------------------------------------------------------------------------------


def media_message(stream_sid: str, frame: bytes) -> str:
    """Raw μ-law, no file header (Twilio error 31924 otherwise)."""
    payload = base64.b64encode(frame).decode()
    return compact_json({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, prompt_id: int) -> str:
    """The mark sent after prompt `prompt_id`'s audio."""
    return compact_json({"event": "mark", "streamSid": stream_sid, "mark": {"name": mark_name(prompt_id)}})


def clear_message(stream_sid: str) -> str:
    return compact_json({"event": "clear", "streamSid": stream_sid})


def mark_name(prompt_id: int) -> str:
    """The mark sent after prompt `prompt_id`'s audio."""
    return f"{_MARK_PREFIX}{prompt_id}"


def prompt_of(name: str) -> int | None:
    """The prompt a mark of ours names, or None for any other mark."""
    number = name.removeprefix(_MARK_PREFIX)
    ours = name.startswith(_MARK_PREFIX) and number.isascii() and number.isdigit() and len(number) < 10
    return int(number) if ours else None

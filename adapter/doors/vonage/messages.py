"""Vonage's WebSocket messages (specs/telephony.md §10.3), parsed into small typed values and written back.
No sockets here.

In: first a text `websocket:connected` naming the audio (`audio/l16;rate=16000`, what our NCCO asks for)
with our NCCO headers at its top level; then binary 20 ms frames of 16-bit little-endian PCM (640 bytes),
and text events: `websocket:dtmf`, `websocket:notify` (the echo of our notify, once the
audio before it has played), `websocket:cleared`. Out: binary frames of exactly that size, `clear`,
and `notify` with the prompt's id in its payload.

A message that breaks the protocol raises `SocketError` with its close code (RFC 6455 §7.4.1): 1003 for
data we cannot take (text that is not JSON, audio frames of the wrong size or before `connected`), 1008
for anything else. An event we do not use is `Ignored`: the call goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode

from adapter.doors.pacer import SLIN_16K
from adapter.doors.socket_messages import (
    Dtmf,
    Ignored,
    SocketError,
    compact_json,
    key_pressed,
    load_object,
    unknown_event,
)

RATE = 16000
#: 20 ms of 16-bit mono PCM at RATE: every audio frame, both ways
FRAME_BYTES = SLIN_16K.frame_bytes
#: the longest text message we read (a `connected` with our headers is under 1 kB)
MAX_TEXT_CHARS = 8 * 1024
MAX_DEPTH = 8
_CONTENT_TYPE = re.compile(r"^audio/l16;\s*rate=(\d+)$", re.IGNORECASE)
_PROMPT = "prompt"


@dataclass(frozen=True, slots=True)
class Connected:
    headers: dict[str, Any] = field(default_factory=dict)  # every top-level field: our NCCO headers among them


@dataclass(frozen=True, slots=True)
class Notified:
    """Our notify came back: the audio queued before it has played. `prompt` is None for one not ours."""

    prompt: int | None


@dataclass(frozen=True, slots=True)
class Cleared:
    pass


Message = Connected | Dtmf | Notified | Cleared | Ignored


def _load(text: str) -> dict[str, Any]:
    return load_object(text, MAX_TEXT_CHARS, MAX_DEPTH, WSCloseCode.UNSUPPORTED_DATA)


def parse_connected(text: str) -> Connected:
    """The socket's first message.

    Raises:
        SocketError: not JSON, not `websocket:connected`, or audio other than the L16 at 16 kHz we asked for.
    """
    message = _load(text)
    if message.get("event") != "websocket:connected":
        raise SocketError(f"the first message must be websocket:connected, not {str(message.get('event'))[:40]!r}")
    match = _CONTENT_TYPE.match(str(message.get("content-type", "")).strip())
    if not match or match.group(1) != str(RATE):
        raise SocketError(f"content-type {str(message.get('content-type'))[:40]!r} is not audio/l16;rate={RATE}",
                          WSCloseCode.UNSUPPORTED_DATA)
    return Connected(message)


def parse_event(text: str) -> Message:
    """A text message after `connected`.

    Raises:
        SocketError: not JSON, or a second `websocket:connected`.
    """
    message = _load(text)
    event = message.get("event")
    if event == "websocket:dtmf":
        return key_pressed(message.get("digit"))
    if event == "websocket:notify":
        payload = message.get("payload")
        prompt = payload.get(_PROMPT) if isinstance(payload, dict) else None
        return Notified(prompt if isinstance(prompt, int) and not isinstance(prompt, bool) else None)
    if event == "websocket:cleared":
        return Cleared()
    if event == "websocket:connected":
        raise SocketError("a second websocket:connected")
    return unknown_event(event)


def check_audio(frame: bytes) -> bytes:
    """A caller's binary frame, which must be exactly 20 ms.

    Raises:
        SocketError: (1003) any other size.
    """
    if len(frame) != FRAME_BYTES:
        raise SocketError(f"an audio frame of {len(frame)} bytes; they are {FRAME_BYTES}", WSCloseCode.UNSUPPORTED_DATA)
    return frame


def notify_message(prompt_id: int) -> str:
    return compact_json({"action": "notify", "payload": {_PROMPT: prompt_id}})


def clear_message() -> str:
    return compact_json({"action": "clear"})

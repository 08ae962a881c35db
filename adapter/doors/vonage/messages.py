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

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode

from adapter.calls.keypad import DTMF_KEYS
from adapter.json_body import JsonBodyError, load_json

FRAME_S = 0.02
RATE = 16000
#: 20 ms of 16-bit mono PCM at RATE: every audio frame, both ways
FRAME_BYTES = 640
#: the longest text message we read (a `connected` with our headers is under 1 kB)
MAX_TEXT_CHARS = 8 * 1024
MAX_DEPTH = 8
_CONTENT_TYPE = re.compile(r"^audio/l16;\s*rate=(\d+)$", re.IGNORECASE)
_PROMPT = "prompt"


class SocketError(Exception):
    """The socket broke the protocol (or may not go on): close it with `code`; `reason` is for the log."""

    def __init__(self, reason: str, code: int = WSCloseCode.POLICY_VIOLATION) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Connected:
    headers: dict[str, Any] = field(default_factory=dict)  # every top-level field: our NCCO headers among them


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Notified:
    """Our notify came back: the audio queued before it has played. `prompt` is None for one not ours."""

    prompt: int | None


@dataclass(frozen=True, slots=True)
class Cleared:
    pass


@dataclass(frozen=True, slots=True)
class Ignored:
    kind: str


Message = Connected | Dtmf | Notified | Cleared | Ignored


def _load(text: str) -> dict[str, Any]:
    if len(text) > MAX_TEXT_CHARS:
        raise SocketError(f"a text message is at most {MAX_TEXT_CHARS} characters", WSCloseCode.MESSAGE_TOO_BIG)
    try:
        value = load_json(text, MAX_DEPTH)
    except JsonBodyError as exc:
        raise SocketError(f"a text message that is not JSON: {exc}", WSCloseCode.UNSUPPORTED_DATA) from None
    if not isinstance(value, dict):
        raise SocketError("a text message must be a JSON object", WSCloseCode.UNSUPPORTED_DATA)
    return value


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
        digit = message.get("digit")
        return Dtmf(digit) if isinstance(digit, str) and len(digit) == 1 and digit in DTMF_KEYS \
            else Ignored("dtmf digit")
    if event == "websocket:notify":
        payload = message.get("payload")
        prompt = payload.get(_PROMPT) if isinstance(payload, dict) else None
        return Notified(prompt if isinstance(prompt, int) and not isinstance(prompt, bool) else None)
    if event == "websocket:cleared":
        return Cleared()
    if event == "websocket:connected":
        raise SocketError("a second websocket:connected")
    return Ignored(f"event {str(event)[:40]!r}")


def check_audio(frame: bytes) -> bytes:
    """A caller's binary frame, which must be exactly 20 ms.

    Raises:
        SocketError: (1003) any other size.
    """
    if len(frame) != FRAME_BYTES:
        raise SocketError(f"an audio frame of {len(frame)} bytes; they are {FRAME_BYTES}", WSCloseCode.UNSUPPORTED_DATA)
    return frame


def frames(pcm: bytes) -> list[bytes]:
    """A prompt's PCM as 20 ms frames, the last one padded with silence: Vonage takes no other size."""
    return [pcm[at:at + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for at in range(0, len(pcm), FRAME_BYTES)]


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def notify_message(prompt_id: int) -> str:
    return _json({"action": "notify", "payload": {_PROMPT: prompt_id}})


def clear_message() -> str:
    return _json({"action": "clear"})

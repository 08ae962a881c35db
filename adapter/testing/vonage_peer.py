"""Vonage's side of a Voice API call, for tests, the benchmark and trying the door without a phone.

Behaves as Vonage does (specs/telephony.md §10.3): webhooks signed with a JWT (HS256 over the signature
secret, `payload_hash` of what is sent); the socket our NCCO names opened with `websocket:connected`
(the NCCO's headers at its top level), then the caller's 16 kHz L16 in 640-byte binary frames on a
monotonic schedule for the whole call (silence between what the caller says), keys as
`websocket:dtmf`. The door's frames are "played" in real time from a buffer; a `notify` is echoed as
`websocket:notify` once the audio before it has played; `clear` empties the buffer and answers
`websocket:cleared`. Everything that arrives is kept on a timeline with its arrival time.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, Self

import aiohttp
import jwt

from adapter.doors.pacer import SLIN_16K
from adapter.testing.line_peer import Arrival
from adapter.testing.socket_peer import SocketPeer

__all__ = ["API_KEY", "RATE", "Arrival", "VonageSocket", "answer_query", "query_payload", "signed_headers",
           "status_event"]

API_KEY = "abcd1234"
RATE = 16000


def signed_headers(secret: str, payload: bytes, iat: float | None = None,
                   payload_hash: str | None = None) -> dict[str, str]:
    """`Authorization: Bearer` as Vonage signs a webhook carrying `payload` (a POST's body, a GET's
    query as compact JSON); `iat` and `payload_hash` may be set to forge a stale or altered one."""
    claims = {"iat": int(time.time() if iat is None else iat), "jti": str(uuid.uuid4()), "iss": "Vonage",
              "api_key": API_KEY, "payload_hash": payload_hash or hashlib.sha256(payload).hexdigest()}
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


def query_payload(query: Mapping[str, str]) -> bytes:
    return json.dumps(dict(query), separators=(",", ":"), ensure_ascii=False).encode()


def answer_query(call_uuid: str, caller: str, called: str) -> dict[str, str]:
    """The answer webhook's query parameters, in Vonage's order."""
    return {"to": called, "from": caller, "endpoint_type": "phone", "conversation_uuid": "CON-" + call_uuid,
            "uuid": call_uuid, "region_url": "https://api-us-3.vonage.com"}


def status_event(call_uuid: str, status: str) -> dict[str, Any]:
    """A call status event as Vonage posts it to the event URL."""
    return {"uuid": call_uuid, "conversation_uuid": "CON-" + call_uuid, "status": status, "direction": "inbound",
            "timestamp": "2026-12-04T03:00:00.000Z", "from": "15551230000", "to": "15559870000"}


class VonageSocket(SocketPeer):
    """One call's socket. `async with VonageSocket(session, endpoint)` connects with the NCCO endpoint's
    uri and headers and sends `websocket:connected`; leaving it closes the socket. Arrivals are `audio`,
    `notify` (marker: its prompt id) and `clear`; the caller's line starts with `talk()`."""

    AUDIO, MARKER = "audio", "notify"

    def __init__(self, session: aiohttp.ClientSession, endpoint: Mapping[str, Any],
                 connected: Mapping[str, Any] | None = None) -> None:
        super().__init__(SLIN_16K)
        self._session = session
        self._endpoint = endpoint
        self._connected = connected  # a replacement first message (tests of bad ones)

    async def __aenter__(self) -> Self:
        ws = await self._connect(self._session, self._endpoint["uri"])
        first = self._connected or {"event": "websocket:connected", "content-type": self._endpoint["content-type"],
                                    **self._endpoint.get("headers", {})}
        await ws.send_str(json.dumps(first))
        return self

    # --- what Vonage sends ------------------------------------------------------------------------

    async def dtmf(self, digit: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"event": "websocket:dtmf", "digit": digit, "duration": 260}))

    async def _send_audio(self, frame: bytes, number: int) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(frame)

    def _echo(self, marker: str | int | None) -> bool:
        return self._send_later({"event": "websocket:notify", "payload": {"prompt": marker}})

    # --- what the door sends ----------------------------------------------------------------------

    def _binary(self, data: bytes, now: float) -> None:
        if len(data) != SLIN_16K.frame_bytes:
            self.problems.append(f"a {len(data)}-byte frame: Vonage takes {SLIN_16K.frame_bytes}")
        self.timeline.append(Arrival("audio", now, data))
        self._buffered(len(data) / (2 * RATE), now)

    def _text(self, message: dict[str, Any], now: float) -> None:
        action = message.get("action")
        if action == "notify":
            prompt = message.get("payload", {}).get("prompt")
            self.timeline.append(Arrival("notify", now, marker=prompt))
            self._echo_when_played(prompt, now)
        elif action == "clear":
            self.timeline.append(Arrival("clear", now))
            self._cleared(now)
            self._send_later({"event": "websocket:cleared"})
        else:
            self.problems.append(f"an unknown action: {message}")

    @property
    def notifies(self) -> list[str | int | None]:
        return [a.marker for a in self.timeline if a.kind == "notify"]

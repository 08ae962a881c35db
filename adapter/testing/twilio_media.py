"""Twilio's side of a Media Stream, for tests, the benchmark and trying the door without a phone.

Behaves as Twilio does (specs/telephony.md §2.2-2.4): `connected` and `start` first, then the caller's
μ-law in 20 ms `media` frames on a monotonic schedule for the whole call (silence between what the
caller says), numbers as strings; the door's `media` is "played" in real time from a buffer, each
`mark` is echoed once the audio before it has played, and `clear` empties the buffer and echoes the
pending marks at once. Everything that arrives is kept on a timeline with its arrival time.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Self

import aiohttp

from adapter.doors.pacer import FRAME_S, ULAW_8K
from adapter.doors.twilio.media_messages import MEDIA_FORMAT
from adapter.testing.line_peer import Arrival
from adapter.testing.socket_peer import SocketPeer

__all__ = ["Arrival", "MediaPeer"]


class MediaPeer(SocketPeer):
    """One stream. `async with MediaPeer(...)` connects and starts it; leaving it closes the socket.
    Arrivals are `media` (audio), `mark` (marker: its name) and `clear`."""

    AUDIO, MARKER = "media", "mark"

    def __init__(self, session: aiohttp.ClientSession, url: str, call_sid: str, parameters: dict[str, str],
                 stream_sid: str | None = None, account_sid: str = "AC" + "0" * 32) -> None:
        super().__init__(ULAW_8K)
        self._session = session
        self._url = url
        self.call_sid = call_sid
        self.stream_sid = stream_sid or "MZ" + call_sid[2:]
        self._parameters = parameters
        self._account_sid = account_sid
        self.marks: list[str] = []  # the door's marks, as they arrived
        self.frames = 0  # the door's media frames so far
        self._sequence = 0

    async def __aenter__(self) -> Self:
        await self._connect(self._session, self._url)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send({"event": "start", "start": {
            "accountSid": self._account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
            "tracks": ["inbound"], "mediaFormat": MEDIA_FORMAT, "customParameters": self._parameters},
            "streamSid": self.stream_sid})
        self.talk()
        return self

    # --- what Twilio sends ----------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Any message, numbered as Twilio numbers them."""
        assert self.ws is not None
        self._sequence += 1
        await self.ws.send_str(json.dumps({**message, "sequenceNumber": str(self._sequence)}))

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "streamSid": self.stream_sid,
                         "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        await self.send({"event": "stop", "streamSid": self.stream_sid,
                         "stop": {"accountSid": self._account_sid, "callSid": self.call_sid}})

    async def _send_audio(self, frame: bytes, number: int) -> None:
        media = {"track": "inbound", "chunk": str(number), "timestamp": str(round((number - 1) * FRAME_S * 1000)),
                 "payload": base64.b64encode(frame).decode()}
        await self.send({"event": "media", "streamSid": self.stream_sid, "media": media})

    def _echo(self, marker: str | int | None) -> bool:
        if not self._open():
            return False
        self._spawn(self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": marker}}))
        return True

    # --- what the door sends ----------------------------------------------------------------------

    def _binary(self, data: bytes, now: float) -> None:
        self.problems.append("a binary frame: Twilio takes JSON text only")

    def _text(self, message: dict[str, Any], now: float) -> None:
        if message.get("streamSid") != self.stream_sid:
            self.problems.append(f"a message for another stream: {message}")
        event = message.get("event")
        if event == "media":
            audio = base64.b64decode(message["media"]["payload"], validate=True)
            self.timeline.append(Arrival("media", now, audio))
            self.frames += 1
            self._buffered(len(audio) / 8000, now)
        elif event == "mark":
            name = message["mark"]["name"]
            self.timeline.append(Arrival("mark", now, marker=name))
            self.marks.append(name)
            self._echo_when_played(name, now)
        elif event == "clear":
            self.timeline.append(Arrival("clear", now))
            self._cleared(now)
        else:
            self.problems.append(f"an unknown event: {message}")

    def kinds(self) -> list[str | int]:
        return [a.kind for a in self.timeline]

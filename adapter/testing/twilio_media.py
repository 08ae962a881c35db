"""Twilio's side of a Media Stream, for tests, the benchmark and trying the door without a phone.

Behaves as Twilio does (specs/telephony.md §2.2-2.4): `connected` and `start` first, then the caller's
μ-law in 20 ms `media` frames on a monotonic schedule for the whole call (silence between what the
caller says), numbers as strings; the door's `media` is "played" in real time from a buffer, each
`mark` is echoed once the audio before it has played, and `clear` empties the buffer and echoes the
pending marks at once. Everything that arrives is kept on a timeline with its arrival time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp

from adapter.doors.pacer import FRAME_S, ULAW_8K
from adapter.doors.twilio.media_messages import MEDIA_FORMAT


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message from the door: `kind` is media, mark or clear; `at` is time.monotonic()."""

    kind: str
    at: float
    audio: bytes = b""
    name: str = ""


@dataclass(slots=True)
class _Said:
    ulaw: bytes
    done: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MediaPeer:
    """One stream. `async with MediaPeer(...)` connects and starts it; leaving it closes the socket."""

    def __init__(self, session: aiohttp.ClientSession, url: str, call_sid: str, parameters: dict[str, str],
                 stream_sid: str | None = None, account_sid: str = "AC" + "0" * 32) -> None:
        self._session = session
        self._url = url
        self.call_sid = call_sid
        self.stream_sid = stream_sid or "MZ" + call_sid[2:]
        self._parameters = parameters
        self._account_sid = account_sid
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.timeline: list[Arrival] = []
        self.echoed: list[str] = []
        self.marks: list[str] = []  # the door's marks, as they arrived
        self.frames = 0  # the door's media frames so far
        self.close_code: int | None = None
        self.problems: list[str] = []  # what the door did that Twilio would refuse
        self.close_reason = ""
        self._sequence = 0
        self._speech: list[_Said] = []
        self._played_until = 0.0  # when the audio received so far will have played
        self._marks: dict[str, asyncio.TimerHandle] = {}
        self._changed = asyncio.Event()  # set, and replaced, whenever anything happens
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self.ws = await self._session.ws_connect(self._url)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send({"event": "start", "start": {
            "accountSid": self._account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
            "tracks": ["inbound"], "mediaFormat": MEDIA_FORMAT, "customParameters": self._parameters},
            "streamSid": self.stream_sid})
        self._tasks = [asyncio.create_task(self._talk()), asyncio.create_task(self._listen())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for handle in self._marks.values():
            handle.cancel()
        if self.ws is not None:
            await self.ws.close()

    # --- what Twilio sends ----------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Any message, numbered as Twilio numbers them."""
        assert self.ws is not None
        self._sequence += 1
        await self.ws.send_str(json.dumps({**message, "sequenceNumber": str(self._sequence)}))

    async def say(self, ulaw: bytes) -> float:
        """Stream the caller's μ-law in real time; returns when its last frame went (time.monotonic())."""
        said = _Said(ulaw)
        self._speech.append(said)
        return await said.done

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "streamSid": self.stream_sid,
                         "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        await self.send({"event": "stop", "streamSid": self.stream_sid,
                         "stop": {"accountSid": self._account_sid, "callSid": self.call_sid}})

    async def _talk(self) -> None:
        """20 ms frames on a monotonic schedule: what the caller says, else line silence."""
        started = time.monotonic()
        chunk = 0
        pending = b""
        while True:
            if not pending and self._speech:
                pending = self._speech[0].ulaw
            frame, pending = pending[:ULAW_8K.frame_bytes], pending[ULAW_8K.frame_bytes:]
            chunk += 1
            media = {"track": "inbound", "chunk": str(chunk), "timestamp": str(round((chunk - 1) * FRAME_S * 1000)),
                     "payload": base64.b64encode(frame.ljust(ULAW_8K.frame_bytes, ULAW_8K.silence)).decode()}
            try:
                await self.send({"event": "media", "streamSid": self.stream_sid, "media": media})
            except ConnectionResetError:
                return
            if frame and not pending:
                self._speech.pop(0).done.set_result(time.monotonic())
            await asyncio.sleep(max(0.0, started + chunk * FRAME_S - time.monotonic()))

    # --- what the door sends ----------------------------------------------------------------------

    async def _listen(self) -> None:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._arrived(json.loads(msg.data), time.monotonic())
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self.problems.append("a binary frame: Twilio takes JSON text only")
            else:
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    self.close_reason = msg.extra or ""
                await self.ws.close()
                self.close_code = self.ws.close_code
                self._notify()
                return
            self._notify()

    def _arrived(self, message: dict[str, Any], now: float) -> None:
        if message.get("streamSid") != self.stream_sid:
            self.problems.append(f"a message for another stream: {message}")
        event = message.get("event")
        if event == "media":
            audio = base64.b64decode(message["media"]["payload"], validate=True)
            self.timeline.append(Arrival("media", now, audio))
            self.frames += 1
            self._played_until = max(self._played_until, now) + len(audio) / 8000
        elif event == "mark":
            name = message["mark"]["name"]
            self.timeline.append(Arrival("mark", now, name=name))
            self.marks.append(name)
            delay = max(0.0, self._played_until - now)
            self._marks[name] = asyncio.get_running_loop().call_later(delay, self._echo, name)
        elif event == "clear":
            self.timeline.append(Arrival("clear", now))
            self._played_until = now
            for name, handle in list(self._marks.items()):
                handle.cancel()
                self._echo(name)
        else:
            self.problems.append(f"an unknown event: {message}")

    def _echo(self, name: str) -> None:
        self._marks.pop(name, None)
        if self.ws is None or self.ws.closed:
            return
        self.echoed.append(name)
        self._notify()
        task = asyncio.get_running_loop().create_task(
            self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, done: Callable[[MediaPeer], bool], timeout: float = 30.0) -> None:
        """Wait until `done(self)` holds, checked whenever something arrives or is echoed."""
        async with asyncio.timeout(timeout):
            while not done(self):
                await self._changed.wait()

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def kinds(self) -> list[str]:
        return [a.kind for a in self.timeline]

    def prompts(self) -> list[tuple[str, list[Arrival]]]:
        """Each mark with the media frames that came before it (after the previous mark or clear)."""
        out: list[tuple[str, list[Arrival]]] = []
        frames: list[Arrival] = []
        for arrival in self.timeline:
            if arrival.kind == "media":
                frames.append(arrival)
            elif arrival.kind == "mark":
                out.append((arrival.name, frames))
                frames = []
            else:
                frames = []
        return out

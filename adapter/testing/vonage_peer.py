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

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
import jwt

from adapter.doors.pacer import FRAME_S, SLIN_16K

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


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message from the door: `kind` is audio, notify or clear; `at` is time.monotonic()."""

    kind: str
    at: float
    audio: bytes = b""
    prompt: int | None = None


@dataclass(slots=True)
class _Said:
    pcm: bytes
    done: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class VonageSocket:
    """One call's socket. `async with VonageSocket(session, endpoint)` connects with the NCCO endpoint's
    uri and headers and sends `websocket:connected`; leaving it closes the socket."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: Mapping[str, Any],
                 connected: Mapping[str, Any] | None = None) -> None:
        self._session = session
        self._endpoint = endpoint
        self._connected = connected  # a replacement first message (tests of bad ones)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.timeline: list[Arrival] = []
        self.echoed: list[int] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self.problems: list[str] = []  # what the door did that Vonage would refuse
        self._speech: list[_Said] = []
        self._played_until = 0.0  # when the audio received so far will have played
        self._pending: dict[int, asyncio.TimerHandle] = {}  # notifies not echoed yet
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self.ws = await self._session.ws_connect(self._endpoint["uri"])
        first = self._connected or {"event": "websocket:connected", "content-type": self._endpoint["content-type"],
                                    **self._endpoint.get("headers", {})}
        await self.ws.send_str(json.dumps(first))
        self._tasks = [asyncio.create_task(self._listen())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for handle in self._pending.values():
            handle.cancel()
        if self.ws is not None:
            await self.ws.close()

    # --- what Vonage sends ------------------------------------------------------------------------

    def talk(self) -> None:
        """Start the caller's line: 20 ms frames for the rest of the call, speech or silence."""
        self._tasks.append(asyncio.create_task(self._talk()))

    async def say(self, pcm: bytes) -> float:
        """The caller says 16 kHz PCM in real time; returns when its last frame went (time.monotonic())."""
        said = _Said(pcm)
        self._speech.append(said)
        return await said.done

    async def dtmf(self, digit: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"event": "websocket:dtmf", "digit": digit, "duration": 260}))

    async def _talk(self) -> None:
        assert self.ws is not None
        started, chunk, pending = time.monotonic(), 0, b""
        while True:
            if not pending and self._speech:
                pending = self._speech[0].pcm
            frame, pending = pending[:SLIN_16K.frame_bytes], pending[SLIN_16K.frame_bytes:]
            chunk += 1
            try:
                await self.ws.send_bytes(frame.ljust(SLIN_16K.frame_bytes, SLIN_16K.silence))
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
            now = time.monotonic()
            if msg.type == aiohttp.WSMsgType.BINARY:
                self._audio(msg.data, now)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                self._action(json.loads(msg.data), now)
            else:
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    self.close_reason = msg.extra or ""
                await self.ws.close()
                self.close_code = self.ws.close_code
                self._notify()
                return
            self._notify()

    def _audio(self, frame: bytes, now: float) -> None:
        if len(frame) != SLIN_16K.frame_bytes:
            self.problems.append(f"a {len(frame)}-byte frame: Vonage takes {SLIN_16K.frame_bytes}")
        self.timeline.append(Arrival("audio", now, frame))
        self._played_until = max(self._played_until, now) + len(frame) / (2 * RATE)

    def _action(self, message: dict[str, Any], now: float) -> None:
        action = message.get("action")
        if action == "notify":
            prompt = message.get("payload", {}).get("prompt")
            self.timeline.append(Arrival("notify", now, prompt=prompt))
            delay = max(0.0, self._played_until - now)
            self._pending[prompt] = asyncio.get_running_loop().call_later(delay, self._echo, prompt)
        elif action == "clear":
            self.timeline.append(Arrival("clear", now))
            self._played_until = now
            for prompt, handle in list(self._pending.items()):
                handle.cancel()
                self._echo(prompt)
            self._send({"event": "websocket:cleared"})
        else:
            self.problems.append(f"an unknown action: {message}")

    def _echo(self, prompt: int) -> None:
        self._pending.pop(prompt, None)
        self.echoed.append(prompt)
        self._send({"event": "websocket:notify", "payload": {"prompt": prompt}})

    def _send(self, message: dict[str, Any]) -> None:
        if self.ws is None or self.ws.closed:
            return
        task = asyncio.get_running_loop().create_task(self.ws.send_str(json.dumps(message)))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, done: Callable[[VonageSocket], bool], timeout: float = 30.0) -> None:
        """Wait until `done(self)` holds, checked whenever something arrives or is echoed."""
        async with asyncio.timeout(timeout):
            while not done(self):
                await self._changed.wait()

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    @property
    def notifies(self) -> list[int | None]:
        return [a.prompt for a in self.timeline if a.kind == "notify"]

    def prompts(self) -> list[tuple[int | None, list[Arrival]]]:
        """Each notify with the audio frames that came before it (after the previous notify or clear)."""
        out: list[tuple[int | None, list[Arrival]]] = []
        frames: list[Arrival] = []
        for arrival in self.timeline:
            if arrival.kind == "audio":
                frames.append(arrival)
            elif arrival.kind == "notify":
                out.append((arrival.prompt, frames))
                frames = []
            else:
                frames = []
        return out

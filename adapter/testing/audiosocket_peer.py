"""Asterisk's side of an AudioSocket call, over real TCP: for tests, the benchmark and trying the door
without a PBX.

Behaves as `AudioSocket()` in Asterisk 20+ does (res/res_audiosocket.c, specs/telephony.md §6.1): the
UUID frame first, then the caller's audio as 320-byte 0x10 frames every 20 ms on a monotonic schedule
for the whole call (silence between what the caller says), keys as 0x03 frames, 0x00 or plain EOF to
hang up. Every frame the door sends is kept with its arrival time; what Asterisk would refuse (a kind
other than audio or hang-up, an empty or odd-sized audio frame) is noted in `problems`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from adapter.doors.audiosocket.frames import FRAME_S, HANGUP_FRAME, HEADER, Kind, encode, frame_bytes


@dataclass(frozen=True, slots=True)
class Arrival:
    """One frame from the door: its kind byte, payload and time.monotonic() of arrival."""

    kind: int
    at: float
    payload: bytes = b""


@dataclass(slots=True)
class _Said:
    pcm: bytes
    done: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class AudioSocketPeer:
    """One call. `async with AudioSocketPeer(host, port)` connects and sends the UUID (unless `call` is
    None: then nothing is sent, for tests of what comes first); leaving it closes the connection."""

    def __init__(self, host: str, port: int, call: uuid.UUID | None = None, *, send_uuid: bool = True,
                 talk: bool = True, rate: int = 8000) -> None:
        self.host, self.port = host, port
        self.call = call or uuid.uuid4()
        self._send_uuid = send_uuid
        self._talking = talk
        self._kind = {8000: Kind.AUDIO, 16000: 0x12}[rate]
        self._frame = frame_bytes(rate)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.timeline: list[Arrival] = []
        self.problems: list[str] = []
        self.hung_up = False  # the door sent 0x00
        self.closed = False  # the door closed the connection
        self._speech: list[_Said] = []
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        if self._send_uuid:
            await self.send(encode(Kind.UUID, self.call.bytes))
        self._tasks = [asyncio.create_task(self._listen())]
        if self._talking:
            self._tasks.append(asyncio.create_task(self._talk()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()

    # --- what Asterisk sends ----------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Raw bytes on the wire (a frame from `encode`, or anything else)."""
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def say(self, pcm: bytes) -> float:
        """Stream the caller's 16-bit PCM in real time; returns when its last frame went (time.monotonic())."""
        said = _Said(pcm)
        self._speech.append(said)
        return await said.done

    async def dtmf(self, key: str) -> None:
        await self.send(encode(Kind.DTMF, key.encode("ascii")))

    async def hang_up(self) -> None:
        """0x00, as a dialplan's hang-up does; the connection stays open for the door to close."""
        await self.send(HANGUP_FRAME)

    async def end(self) -> None:
        """Close our side without a frame, as Asterisk does when the caller hangs up."""
        self._stop_talking()
        assert self.writer is not None
        self.writer.write_eof()

    def _stop_talking(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()

    async def _talk(self) -> None:
        """20 ms frames on a monotonic schedule: what the caller says, else line silence."""
        started = time.monotonic()
        sent = 0
        pending = b""
        while True:
            if not pending and self._speech:
                pending = self._speech[0].pcm
            frame, pending = pending[:self._frame], pending[self._frame:]
            try:
                await self.send(encode(self._kind, frame.ljust(self._frame, b"\x00")))
            except ConnectionError:
                return
            sent += 1
            if frame and not pending:
                self._speech.pop(0).done.set_result(time.monotonic())
            await asyncio.sleep(max(0.0, started + sent * FRAME_S - time.monotonic()))

    # --- what the door sends ----------------------------------------------------------------------

    async def _listen(self) -> None:
        assert self.reader is not None
        try:
            while True:
                header = await self.reader.readexactly(HEADER.size)
                kind, length = struct.unpack("!BH", header)
                payload = await self.reader.readexactly(length)
                self._arrived(kind, payload, time.monotonic())
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                self.problems.append(f"the door closed inside a frame ({len(exc.partial)} bytes)")
            self.closed = True
            self._stop_talking()
            self._notify()

    def _arrived(self, kind: int, payload: bytes, now: float) -> None:
        self.timeline.append(Arrival(kind, now, payload))
        if kind == Kind.HANGUP:
            self.hung_up = True
            if payload:
                self.problems.append(f"a hang-up with {len(payload)} bytes")
        elif kind != self._kind:
            self.problems.append(f"a frame of kind 0x{kind:02x}: Asterisk ends the call on it")
        elif len(payload) != self._frame:
            self.problems.append(f"an audio frame of {len(payload)} bytes, not {self._frame}")
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, done: Callable[[AudioSocketPeer], bool], timeout: float = 30.0) -> None:
        """Wait until `done(self)` holds, checked whenever something arrives."""
        async with asyncio.timeout(timeout):
            while not done(self):
                await self._changed.wait()

    def audio(self) -> list[Arrival]:
        return [a for a in self.timeline if a.kind == self._kind]

    def audio_since(self, at: float) -> list[Arrival]:
        return [a for a in self.audio() if a.at > at]

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
import time
import uuid
from typing import Self

from adapter.doors.audiosocket.frames import HANGUP_FRAME, HEADER, Kind, encode, frame_bytes
from adapter.doors.pacer import FrameFormat
from adapter.testing.line_peer import Arrival, LinePeer

__all__ = ["Arrival", "AudioSocketPeer"]


class AudioSocketPeer(LinePeer):
    """One call. `async with AudioSocketPeer(host, port)` connects and sends the UUID (unless `send_uuid`
    is False: then nothing is sent, for tests of what comes first); leaving it closes the connection.
    Arrivals are kept by kind byte, audio in `audio`."""

    def __init__(self, host: str, port: int, call: uuid.UUID | None = None, *, send_uuid: bool = True,
                 talk: bool = True, rate: int = 8000) -> None:
        super().__init__(FrameFormat(frame_bytes(rate), b"\x00"))
        self.AUDIO = {8000: Kind.AUDIO, 16000: 0x12}[rate]
        self.host, self.port = host, port
        self.call = call or uuid.uuid4()
        self._send_uuid = send_uuid
        self._talks = talk
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.hung_up = False  # the door sent 0x00
        self.closed = False  # the door closed the connection

    async def __aenter__(self) -> Self:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        if self._send_uuid:
            await self.send(encode(Kind.UUID, self.call.bytes))
        self._start(self._read())
        if self._talks:
            self.talk()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
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

    async def _send_audio(self, frame: bytes, number: int) -> None:
        await self.send(encode(self.AUDIO, frame))

    def _echo(self, marker: str | int | None) -> bool:
        return False  # Asterisk echoes nothing

    # --- what the door sends ----------------------------------------------------------------------

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                kind, length = HEADER.unpack(await self.reader.readexactly(HEADER.size))
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
        elif kind != self.AUDIO:
            self.problems.append(f"a frame of kind 0x{kind:02x}: Asterisk ends the call on it")
        elif len(payload) != self._format.frame_bytes:
            self.problems.append(f"an audio frame of {len(payload)} bytes, not {self._format.frame_bytes}")
        self._notify()

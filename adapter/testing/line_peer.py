"""What every phone system's peer does alike, whatever its wire: the caller's line (20 ms frames on a
monotonic schedule for the whole call, what the caller says else silence), the door's output kept on a
timeline with arrival times, a buffer that "plays" the door's audio in real time and echoes a marker
once the audio before it has played (Twilio `mark`, Vonage `notify`), and `until` to wait on all that.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

from adapter.doors.pacer import FRAME_S, FrameFormat

Marker = str | int | None


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message or frame from the door: `kind` in the peer's own terms (a Twilio event, an AudioSocket
    kind byte), `at` is time.monotonic(); `audio` for audio, `marker` for a marker (mark name, prompt id)."""

    kind: str | int
    at: float
    audio: bytes = b""
    marker: Marker = None


@dataclass(slots=True)
class _Said:
    audio: bytes
    done: asyncio.Future[float] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class LinePeer:
    """The shared half of a peer; a subclass writes the wire: `_send_audio`, `_echo`, and its reader
    (started with `_start(reader)`), which adds to `timeline` and calls `_notify`. `AUDIO` and `MARKER`
    are the kinds of its audio and marker arrivals."""

    AUDIO: str | int = "audio"
    MARKER: str | int | None = None

    def __init__(self, fmt: FrameFormat) -> None:
        self.timeline: list[Arrival] = []
        self.echoed: list[Marker] = []
        self.problems: list[str] = []  # what the door did that the phone system would refuse
        self._format = fmt
        self._speech: list[_Said] = []
        self._played_until = 0.0  # when the door's audio received so far will have played
        self._pending: dict[Marker, asyncio.TimerHandle] = {}  # markers not echoed yet
        self._changed = asyncio.Event()  # set, and replaced, whenever anything happens
        self._reading: asyncio.Task[None] | None = None
        self._talking: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Self:
        raise NotImplementedError

    async def __aexit__(self, *exc: object) -> None:
        for task in (self._reading, self._talking):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for handle in self._pending.values():
            handle.cancel()

    def _start(self, reader: Coroutine[Any, Any, None]) -> None:
        self._reading = asyncio.create_task(reader)

    def _spawn(self, send: Coroutine[Any, Any, Any]) -> None:
        """A send from a callback (an echo): kept until done."""
        task = asyncio.get_running_loop().create_task(send)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    # --- the caller's line ----------------------------------------------------------------------------

    def talk(self) -> None:
        """Start the caller's line: 20 ms frames for the rest of the call, speech or silence."""
        self._talking = asyncio.create_task(self._talk())

    def _stop_talking(self) -> None:
        if self._talking is not None:
            self._talking.cancel()

    async def say(self, audio: bytes) -> float:
        """The caller says `audio` (the line's codec) in real time; returns when its last frame went
        (time.monotonic())."""
        said = _Said(audio)
        self._speech.append(said)
        return await said.done

    async def _send_audio(self, frame: bytes, number: int) -> None:
        """Frame `number` (from 1) of the caller's line on the wire."""
        raise NotImplementedError

    async def _talk(self) -> None:
        size = self._format.frame_bytes
        started, sent, pending = time.monotonic(), 0, b""
        while True:
            if not pending and self._speech:
                pending = self._speech[0].audio
            frame, pending = pending[:size], pending[size:]
            sent += 1
            try:
                await self._send_audio(frame.ljust(size, self._format.silence), sent)
            except ConnectionError:
                return
            if frame and not pending:
                self._speech.pop(0).done.set_result(time.monotonic())
            await asyncio.sleep(max(0.0, started + sent * FRAME_S - time.monotonic()))

    # --- the door's audio, played from a buffer --------------------------------------------------------

    def _buffered(self, seconds: float, now: float) -> None:
        self._played_until = max(self._played_until, now) + seconds

    def _echo_when_played(self, marker: Marker, now: float) -> None:
        delay = max(0.0, self._played_until - now)
        self._pending[marker] = asyncio.get_running_loop().call_later(delay, self._played, marker)

    def _cleared(self, now: float) -> None:
        """The buffer is emptied: every pending marker is echoed at once."""
        self._played_until = now
        for marker, handle in list(self._pending.items()):
            handle.cancel()
            self._played(marker)

    def _played(self, marker: Marker) -> None:
        self._pending.pop(marker, None)
        if self._echo(marker):
            self.echoed.append(marker)
            self._notify()

    def _echo(self, marker: Marker) -> bool:
        """Send the marker's echo; False when the connection is gone (nothing echoed)."""
        raise NotImplementedError

    # --- waiting on it all ------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, done: Callable[[Any], bool], timeout: float = 30.0) -> None:
        """Wait until `done(self)` holds, checked whenever something arrives or is echoed."""
        async with asyncio.timeout(timeout):
            while not done(self):
                await self._changed.wait()

    def audio(self) -> list[Arrival]:
        return [a for a in self.timeline if a.kind == self.AUDIO]

    def audio_since(self, at: float) -> list[Arrival]:
        return [a for a in self.audio() if a.at > at]

    def prompts(self) -> list[tuple[Marker, list[Arrival]]]:
        """Each marker with the audio that came before it (after the previous marker or anything else)."""
        out: list[tuple[Marker, list[Arrival]]] = []
        frames: list[Arrival] = []
        for arrival in self.timeline:
            if arrival.kind == self.AUDIO:
                frames.append(arrival)
            elif arrival.kind == self.MARKER:
                out.append((arrival.marker, frames))
                frames = []
            else:
                frames = []
        return out

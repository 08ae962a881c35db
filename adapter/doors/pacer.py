"""Prompt audio out in real time for every streaming door: raw 20 ms frames of the door's codec on one
monotonic schedule, paced by ONE ticking task per process, whatever the number of calls or doors.

How a door uses it (one `PacedStream` per call; the door frames each raw frame for its wire):

    stream = PacedStream(app[PACER], ULAW_8K, send_frame=..., played=lambda p: conversation.send(PlaybackDone(p)),
                         send_marker=..., send_clear=..., transport=request.transport, name="twilio MZ…")
    await stream.play(prompt_id, audio)  # a `Play` event's audio, already in the door's codec
    await stream.clear()                 # a `Clear` event: the caller barged in
    stream.echoed(prompt_id)             # the peer echoed our marker (Twilio `mark`, Vonage `notify`)
    await stream.wait_played(timeout)    # before closing after a goodbye
    stream.close()                       # the transport is gone

A door whose peer expects audio all call long (RTP: a PBX's media timeout, NAT pinholes) passes
`fill`: from `start()` (or its first prompt) until `close()`, every 20 ms slot without prompt audio
gets a frame of the codec's silence through `fill`, on the same schedule as the prompts, so the peer
sees one unbroken stream and `clear` turns it to silence at the next slot.

After a prompt's last frame comes its marker. A door whose peer echoes markers passes `send_marker` and
calls `echoed` when the echo comes; for a peer that echoes nothing (AudioSocket, RTP) the stream itself
reports the prompt played once its audio's play time has passed. Either way `played(prompt_id)` is
called once per prompt that played out; prompts dropped by `clear` are never reported.

Peers buffer what they are sent, so a stream keeps a small lead (LEAD_S) ahead of real time: enough to
ride out a late tick, small enough that `clear` throws away little. Frames follow the schedule set when
a run of audio starts, so a late tick sends the frames it missed and the next is back on time; when the
peer's buffer has run dry (between prompts, or after a stall longer than the lead) the schedule starts
again instead of bursting to catch up. A peer that leaves MAX_UNSENT_BYTES unread in its transport is
skipped, not waited for, and one broken stream never stops the others (bench/capacity.py --pacing).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from adapter.app_state import CLOCK
from adapter.calls.clock import Clock

log = logging.getLogger(__name__)

#: every door's frames are 20 ms of audio
FRAME_S = 0.02
#: audio sent ahead of real time at most (the peer plays from its buffer)
LEAD_S = 0.1
#: a peer that leaves this much unread is not keeping up: skip it rather than wait for it
MAX_UNSENT_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """20 ms frames of one codec: their size, and the byte of the codec's silence that pads the last
    frame (never a short or empty frame: Asterisk hangs up on a zero-length audio frame)."""

    frame_bytes: int
    silence: bytes

    def frames(self, audio: bytes) -> list[bytes]:
        size = self.frame_bytes
        return [audio[at:at + size].ljust(size, self.silence) for at in range(0, len(audio), size)]


ULAW_8K = FrameFormat(160, b"\xff")  # G.711 μ-law 8 kHz (Twilio, RTP PCMU)
SLIN_8K = FrameFormat(320, b"\x00")  # 16-bit linear 8 kHz (AudioSocket)
SLIN_16K = FrameFormat(640, b"\x00")  # 16-bit linear 16 kHz (Vonage)


class Pacer:
    """Wakes every `period` seconds while any stream has audio queued, and sends what is due.

    Ticks keep one phase, and a stream starts its schedule on it (`phase`): frames fall due just as a
    tick comes, and a tick that is late (never early) still finds them due. Started off the phase, a
    schedule would flip between two frames and none on ticks a fraction of a millisecond apart.
    """

    def __init__(self, clock: Clock, period: float = FRAME_S) -> None:
        self.clock = clock
        self.period = period
        self._busy: set[PacedStream] = set()
        self._wake = asyncio.Event()
        self._deadline: float | None = None  # the current tick's scheduled time; None while idle

    def add(self, stream: PacedStream) -> None:
        self._busy.add(stream)
        self._wake.set()

    def phase(self, now: float) -> float:
        """The latest scheduled tick at or before `now` (`now` itself while idle: ticks start after it)."""
        if self._deadline is None:
            return now
        return self._deadline + self.period * math.floor((now - self._deadline) / self.period)

    async def run(self) -> None:
        while True:
            if not self._busy:
                self._deadline = None
                self._wake.clear()
                await self._wake.wait()
            if self._deadline is None:
                self._deadline = self.clock.now()
            now = self.clock.now()
            for stream in list(self._busy):
                try:
                    busy = await stream.tick(now)
                except Exception:  # one broken stream must not stop every call's audio
                    log.exception("%s: pacing failed; dropping its audio", stream.name)
                    stream.close()
                    busy = False
                if not busy:
                    self._busy.discard(stream)
            deadline = self._deadline + self.period
            now = self.clock.now()
            if deadline < now:  # behind (a busy loop): skip the missed ticks, keep the phase
                deadline += self.period * math.ceil((now - deadline) / self.period)
            self._deadline = deadline
            await self.clock.sleep(deadline - now)


class PacedStream:
    """One call's outgoing audio: each prompt as 20 ms frames, then its marker; `clear` drops it all.

    Markers sent and not yet echoed are remembered, so an echo names a prompt that played out; after
    `clear`, a peer echoes the dropped prompts' markers too, and those are no longer ours to report.
    With `fill`, the stream ticks until closed: silence goes out in every slot no prompt frame takes
    (never ahead of the clock: a prompt would wait behind it).
    """

    def __init__(self, pacer: Pacer, fmt: FrameFormat, send_frame: Callable[[bytes], Awaitable[None]],
                 played: Callable[[int], None], *, send_marker: Callable[[int], Awaitable[None]] | None = None,
                 send_clear: Callable[[], Awaitable[None]] | None = None,
                 transport: asyncio.BaseTransport | None = None, name: str = "stream",
                 lead_s: float = LEAD_S, fill: Callable[[bytes], Awaitable[None]] | None = None) -> None:
        self.name = name
        self._pacer = pacer
        self._format = fmt
        self._send_frame = send_frame
        self._played_cb = played
        self._send_marker = send_marker
        self._send_clear = send_clear
        self._transport = transport
        self._fill = fill
        self._silence = fmt.silence * fmt.frame_bytes
        self._lead_frames = round(lead_s / FRAME_S)
        self._queue: deque[bytes | int] = deque()  # frames, and prompt ids whose marker goes next
        self._origin = 0.0  # when the first frame of the current run was due to start playing
        self._sent = 0  # frames sent in the current run
        self._awaiting: set[int] = set()  # markers sent, not echoed yet
        self._ending: deque[tuple[float, int]] = deque()  # no echo: (when it has played, prompt id)
        self._played = asyncio.Event()
        self._played.set()
        self._gone = False

    @property
    def queued_s(self) -> float:
        """Audio not sent yet."""
        return sum(1 for item in self._queue if isinstance(item, bytes)) * FRAME_S

    def start(self) -> None:
        """Tick from now on: with `fill`, silence goes out until the first prompt (without, no effect
        until there is audio)."""
        if not self._gone:
            self._pacer.add(self)

    async def play(self, prompt_id: int, audio: bytes) -> None:
        """Queue a prompt's audio (the door's codec) and start sending it now."""
        if self._gone:
            return
        self._queue.extend(self._format.frames(audio))
        self._queue.append(prompt_id)
        self._played.clear()
        if await self.tick(self._pacer.clock.now()):
            self._pacer.add(self)

    async def clear(self) -> None:
        """The caller barged in: drop queued audio (and tell the peer to drop what it holds)."""
        self._queue.clear()
        self._awaiting.clear()
        self._ending.clear()
        self._played.set()
        if self._send_clear is not None:
            await self._send(self._send_clear)

    def echoed(self, prompt_id: int) -> None:
        """The peer echoed prompt `prompt_id`'s marker: reported played if it is still ours."""
        if prompt_id in self._awaiting:
            self._awaiting.discard(prompt_id)
            self._played_cb(prompt_id)
        self._settle()

    async def wait_played(self, timeout: float) -> bool:
        """Until every queued prompt has been sent and played (False: `timeout` passed first)."""
        if self._played.is_set() or timeout <= 0:
            return self._played.is_set()
        expired = asyncio.Event()
        timer = self._pacer.clock.call_later(timeout, expired.set)
        waits = {asyncio.ensure_future(self._played.wait()), asyncio.ensure_future(expired.wait())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            for wait in waits:
                wait.cancel()
        return self._played.is_set()

    def close(self) -> None:
        """The transport is gone: drop everything, and let nobody wait for prompts that cannot play."""
        self._gone = True
        self._queue.clear()
        self._awaiting.clear()
        self._ending.clear()
        self._played.set()

    async def tick(self, now: float) -> bool:
        """Send what is due at `now`; True while the stream needs ticks (audio queued, or a prompt whose
        play time has not passed)."""
        if self._gone:
            return False
        if (self._queue or self._fill) and _unsent(self._transport) <= MAX_UNSENT_BYTES:
            if now > self._origin + self._sent * FRAME_S:  # the peer has played all we sent: a new run
                self._origin, self._sent = self._pacer.phase(now), 0
            playing = int((now - self._origin) / FRAME_S + 1e-6) + 1  # frames due by now; 1e-6: 0.06 / 0.02 < 3
            while self._queue and (self._sent < playing + self._lead_frames or isinstance(self._queue[0], int)):
                item = self._queue.popleft()
                if isinstance(item, int):
                    await self._marker(item)
                else:
                    self._sent += 1
                    await self._send(self._send_frame, item)
            while self._fill is not None and not self._queue and self._sent < playing:
                self._sent += 1
                await self._send(self._fill, self._silence)
        while self._ending and self._ending[0][0] <= now + 1e-6:
            self._played_cb(self._ending.popleft()[1])
        self._settle()
        return not self._gone and bool(self._queue or self._ending or self._fill)

    async def _marker(self, prompt_id: int) -> None:
        if self._send_marker is None:  # no echo: it has played when its last frame's time is over
            self._ending.append((self._origin + self._sent * FRAME_S, prompt_id))
            return
        self._awaiting.add(prompt_id)
        await self._send(self._send_marker, prompt_id)

    def _settle(self) -> None:
        if not (self._queue or self._awaiting or self._ending):
            self._played.set()

    async def _send(self, send: Callable[..., Awaitable[None]], *args: object) -> None:
        if self._gone:
            return
        try:
            await send(*args)
        except ConnectionResetError:  # the peer hung up mid-send; the door's reader sees the close
            log.info("%s: closed while we were sending", self.name)
            self.close()


def _unsent(transport: asyncio.BaseTransport | None) -> int:
    """Bytes the transport holds unsent (a stream's or a datagram transport's buffer)."""
    size = getattr(transport, "get_write_buffer_size", None)
    return size() if callable(size) else 0


PACER = web.AppKey("pacer", Pacer)


def add_pacer(app: web.Application) -> None:
    """The process's one pacer, on the app's clock, ticking while the app runs (every streaming door's)."""
    app[PACER] = Pacer(app[CLOCK])
    app.cleanup_ctx.append(_ticking)


async def _ticking(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[PACER].run(), name="pacer")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

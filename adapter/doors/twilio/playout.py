"""Prompt audio out to Twilio in real time: 20 ms `media` frames on a monotonic schedule, a `mark`
after each prompt, and one shared ticker that paces every stream of the process.

Twilio buffers what it is sent (specs/telephony.md §2.4), so a stream keeps a small lead (LEAD_S)
ahead of real time: enough to ride out a late tick, small enough that `clear` throws away little.
Frames follow the schedule set when a run of audio starts, so a late tick sends the frames it
missed and the next one is back on time; when Twilio's buffer has run dry (between prompts, or
after a stall longer than the lead), the schedule starts again instead of bursting to catch up.

One ticker task serves every call: one wake-up per 20 ms whatever the number of calls, and no task
per call waking on its own phase (bench/capacity.py measures both).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web

from adapter.doors.twilio.media_messages import (
    FRAME_S,
    clear_message,
    frames,
    mark_message,
    mark_name,
    media_message,
)

log = logging.getLogger(__name__)

#: audio sent ahead of real time at most (Twilio plays from its buffer)
LEAD_S = 0.1
#: a peer that leaves this much unread is not keeping up: skip it rather than wait for it
MAX_UNSENT_BYTES = 16 * 1024


class Ticker:
    """Wakes every `period` seconds while any playout has audio queued, and sends what is due.

    Ticks keep one phase, and a playout starts its schedule on it (`phase`): frames fall due just as
    a tick comes, and a tick that is late (never early) still finds them due. Started off the phase,
    a schedule would flip between two frames and none on ticks a fraction of a millisecond apart.
    """

    def __init__(self, period: float = FRAME_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.clock = clock  # the event loop's clock by default (asyncio uses time.monotonic)
        self._busy: set[Playout] = set()
        self._wake = asyncio.Event()
        self._deadline: float | None = None  # the current tick's scheduled time; None while idle

    def add(self, playout: Playout) -> None:
        self._busy.add(playout)
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
                self._deadline = self.clock()
            now = self.clock()
            for playout in list(self._busy):
                try:
                    busy = await playout.tick(now)
                except Exception:  # one broken stream must not stop every call's audio
                    log.exception("twilio playout %s failed; dropping its audio", playout.stream_sid)
                    playout.close()
                    busy = False
                if not busy:
                    self._busy.discard(playout)
            deadline = self._deadline + self.period
            now = self.clock()
            if deadline < now:  # behind (a busy loop): skip the missed ticks, keep the phase
                deadline += self.period * math.ceil((now - deadline) / self.period)
            self._deadline = deadline
            await asyncio.sleep(deadline - now)


class Playout:
    """One stream's outgoing audio: each prompt as 20 ms frames, then its mark; `clear` drops it all.

    Marks sent and not yet echoed are remembered, so an echo names a prompt that played out; after
    `clear`, Twilio echoes the dropped prompts' marks too, and those are no longer ours to report.
    """

    def __init__(self, ws: web.WebSocketResponse, stream_sid: str, ticker: Ticker,
                 transport: asyncio.BaseTransport | None = None, lead_s: float = LEAD_S) -> None:
        self._ws = ws
        self._transport = transport
        self.stream_sid = stream_sid
        self._ticker = ticker
        self._lead_frames = round(lead_s / FRAME_S)
        self._queue: deque[bytes | int] = deque()  # frames, and prompt ids whose mark goes next
        self._origin = 0.0  # when the first frame of the current run was due to start playing
        self._sent = 0  # frames sent in the current run
        self._awaiting: dict[str, int] = {}  # mark name -> prompt id: sent, not echoed yet
        self._played = asyncio.Event()
        self._played.set()
        self._gone = False

    @property
    def queued_s(self) -> float:
        """Audio not sent yet."""
        return sum(1 for item in self._queue if isinstance(item, bytes)) * FRAME_S

    async def play(self, prompt_id: int, ulaw: bytes) -> None:
        """Queue a prompt's μ-law audio and start sending it now."""
        if self._gone:
            return
        self._queue.extend(frames(ulaw))
        self._queue.append(prompt_id)
        self._played.clear()
        if await self.tick(self._ticker.clock()):
            self._ticker.add(self)

    async def clear(self) -> None:
        """The caller barged in: drop queued audio and tell Twilio to drop what it holds."""
        self._queue.clear()
        self._awaiting.clear()
        self._played.set()
        await self._send(clear_message(self.stream_sid))

    def echoed(self, name: str) -> int | None:
        """The prompt whose mark came back, or None for a mark that is not (or no longer) ours."""
        prompt = self._awaiting.pop(name, None)
        if not self._queue and not self._awaiting:
            self._played.set()
        return prompt

    async def wait_played(self, timeout: float) -> bool:
        """Until every queued prompt has been sent and Twilio has echoed its mark (False: timed out)."""
        if self._played.is_set():
            return True
        try:
            await asyncio.wait_for(self._played.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """The socket is gone: drop everything, and let nobody wait for marks that cannot come."""
        self._gone = True
        self._queue.clear()
        self._awaiting.clear()
        self._played.set()

    async def tick(self, now: float) -> bool:
        """Send what is due at `now`; True while audio is still queued."""
        if self._gone or not self._queue:
            return False
        if isinstance(self._transport, asyncio.WriteTransport) \
                and self._transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            return True  # the peer is not reading; its schedule restarts when it does
        if now > self._origin + self._sent * FRAME_S:  # Twilio has played all we sent: a new run
            self._origin, self._sent = self._ticker.phase(now), 0
        due = int((now - self._origin) / FRAME_S + 1e-6) + 1 + self._lead_frames  # 1e-6: 0.06 / 0.02 < 3
        while self._queue and (self._sent < due or isinstance(self._queue[0], int)):
            item = self._queue.popleft()
            if isinstance(item, int):
                name = mark_name(item)
                self._awaiting[name] = item
                await self._send(mark_message(self.stream_sid, name))
            else:
                self._sent += 1
                await self._send(media_message(self.stream_sid, item))
        return bool(self._queue)

    async def _send(self, text: str) -> None:
        if self._gone:
            return
        try:
            await self._ws.send_str(text)
        except ConnectionResetError:  # Twilio hung up mid-send; the socket's reader sees the close
            log.info("twilio stream %s: closed while we were sending", self.stream_sid)
            self.close()

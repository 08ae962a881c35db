"""A small jitter buffer for one RTP stream: frames in by sequence number, out one per tick, in order.

The network may reorder, repeat, delay or lose packets. Frames are held until `prefetch` of them
(40 ms at 20 ms a packet) are buffered or as many ticks have passed, so a packet overtaken by the
next one still comes out first; the buffer never holds more than `depth` packets (60 ms): a burst
beyond that (the peer's clock ahead of ours, a stall) drops the oldest, since latency is what a
caller hears as a slow bot. Sequence numbers are 16-bit and wrap: they are extended by their signed
distance to the next one due, so 65535 is followed by 0.

`pop` answers None when there is no audio for the tick: a lost packet (a later one is here), or an
underrun (nothing is: the peer is silent or sends comfort noise, or the network stalled). The caller
plays silence for either. A lost packet's slot is passed; an underrun keeps its place, so a late
packet is still played, and the buffer fills up to `prefetch` again before playing on.

Packets that are not audio (telephone-events, comfort noise) share the stream's sequence numbers:
they are pushed as None and skipped, or they would count as losses.
"""

from __future__ import annotations

from collections import Counter

#: a sequence number this far from the next one due is a new stream (a restart, an SSRC change),
#: not a late or early packet (RFC 3550 A.1 tolerates more, but we keep only 60 ms anyway)
MAX_JUMP = 50


def _distance(seq: int, reference: int) -> int:
    """Signed 16-bit distance from `reference` to `seq` (RFC 1982 serial arithmetic)."""
    return ((seq - reference + 0x8000) & 0xFFFF) - 0x8000


class JitterBuffer:
    """Reorders one stream's frames; `counts` says what was dropped and why."""

    def __init__(self, depth: int = 3, prefetch: int = 2, counts: Counter[str] | None = None) -> None:
        if not 1 <= prefetch <= depth:
            raise ValueError(f"prefetch {prefetch} must be within 1..depth ({depth})")
        self.depth = depth
        self.prefetch = prefetch
        self.counts: Counter[str] = Counter() if counts is None else counts  # may be the session's
        self._frames: dict[int, bytes | None] = {}  # by extended sequence number
        self._next: int | None = None  # the extended sequence number due next
        self._newest = 0
        self._playing = False
        self._waited = 0  # ticks spent filling up to `prefetch`

    def push(self, seq: int, frame: bytes | None) -> None:
        """Take the frame with RTP sequence number `seq` (None: a packet that is not audio)."""
        due = self._next
        if due is None or abs(_distance(seq, due & 0xFFFF)) > MAX_JUMP:
            if due is not None:
                self.counts["restarted"] += 1
            due = self._restart(seq)
        ext = due + _distance(seq, due & 0xFFFF)
        if ext < due:
            self.counts["late"] += 1
            return
        if ext in self._frames:
            self.counts["duplicate"] += 1
            return
        self._frames[ext] = frame
        self._newest = max(self._newest, ext)
        while self._newest - self._next >= self.depth:
            self.counts["overflow" if self._next in self._frames else "lost"] += 1
            self._frames.pop(self._next, None)
            self._next += 1

    def pop(self) -> bytes | None:
        """The next frame in sequence, or None for silence (a loss, an underrun, filling up)."""
        if self._next is None:
            return None
        while self._frames.get(self._next, b"") is None:  # not audio: its slot is simply passed
            del self._frames[self._next]
            self._next += 1
        if not self._frames:
            if self._playing:
                self.counts["underrun"] += 1
            self._playing, self._waited = False, 0
            return None
        if not self._playing:
            self._waited += 1
            if self._newest - self._next + 1 < self.prefetch and self._waited < self.prefetch:
                return None
            self._playing = True
        frame = self._frames.pop(self._next, None)
        if frame is None:
            self.counts["lost"] += 1
        self._next += 1
        return frame

    def _restart(self, seq: int) -> int:
        self._frames.clear()
        self._next = self._newest = seq
        self._playing, self._waited = False, 0
        return seq

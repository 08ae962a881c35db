"""A clock that only moves when a test says so: timeouts without sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


class ManualTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._timers: list[tuple[float, int, ManualTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def time(self) -> float:
        """Wall-clock seconds moving with `now` (for JWT `iat`/`exp`)."""
        return 1_790_000_000.0 + self.t

    async def sleep(self, delay: float) -> None:
        """Wait until a test has advanced the clock by `delay`."""
        done = asyncio.get_running_loop().create_future()
        self.call_later(delay, lambda: done.done() or done.set_result(None))
        await done

    def call_later(self, delay: float, callback: Callable[[], None]) -> ManualTimer:
        timer = ManualTimer()
        heapq.heappush(self._timers, (self.t + max(delay, 0.0), next(self._seq), timer, callback))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order (each sees its own deadline as now)."""
        end = self.t + seconds
        while self._timers and self._timers[0][0] <= end:
            deadline, _, timer, callback = heapq.heappop(self._timers)
            self.t = deadline
            if not timer.cancelled:
                callback()
        self.t = end

    @property
    def pending(self) -> int:
        return sum(1 for *_, timer, _ in self._timers if not timer.cancelled)

    @property
    def next_deadline(self) -> float | None:
        """When the next timer not cancelled is due; None when none is."""
        due = [deadline for deadline, _, timer, _ in self._timers if not timer.cancelled]
        return min(due) if due else None

"""A clock that only moves when a test says so: timeouts without sleeping."""

from __future__ import annotations

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

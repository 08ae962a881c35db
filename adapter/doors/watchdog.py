"""A stream door's guard against a peer gone silent: phone systems send audio every 20 ms for the whole
call, so a long silence on the wire means the peer is gone without a word (or never started talking)."""

from __future__ import annotations

from collections.abc import Callable

from adapter.calls.clock import Clock, Timer


class Watchdog:
    """Calls `expired` once `limit_s` pass on `clock` without `saw`: one timer, re-armed only when it fires
    (not per frame), so a stream's 50 frames a second cost one clock read each."""

    def __init__(self, clock: Clock, limit_s: float, expired: Callable[[], None]) -> None:
        self._clock = clock
        self._limit_s = limit_s
        self._expired = expired
        self._last = clock.now()
        self._timer: Timer | None = clock.call_later(limit_s, self._check)

    def watch(self, limit_s: float, expired: Callable[[], None]) -> None:
        """From now on, `expired` after `limit_s` without `saw` (the protocol's next phase: a handshake
        has its own limit)."""
        self._limit_s, self._expired = limit_s, expired
        self.saw()
        if self._timer is None:
            self._timer = self._clock.call_later(limit_s, self._check)

    def saw(self) -> None:
        self._last = self._clock.now()

    def _check(self) -> None:
        left = self._last + self._limit_s - self._clock.now()
        if left > 0:
            self._timer = self._clock.call_later(left, self._check)
        else:
            self._timer = None
            self._expired()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

"""A call's named one-shot timers (filler, give-up, no-input, inter-digit) on the injected clock.

A timer fires by posting a `Timeout` to the call's inbox, so its handler runs in turn with everything
else. A timer set again or cancelled after it fired but before its `Timeout` was handled must not act:
each setting has a generation, and only the current one counts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from adapter.calls.clock import Clock, Timer

# the timers a call runs
FILLER = "filler"  # the bot is slow: say "one moment"
GIVE_UP = "giveup"  # the bot is stuck: stop waiting
NO_INPUT = "no_input"  # the caller has said nothing
INTER_DIGIT = "inter_digit"  # the caller has stopped typing


@dataclass(frozen=True, slots=True)
class Timeout:
    name: str
    generation: int


class Timers:
    def __init__(self, clock: Clock, post: Callable[[Timeout], None]) -> None:
        self._clock = clock
        self._post = post
        self._timers: dict[str, Timer] = {}
        self._generations = itertools.count(1)
        self._current: dict[str, int] = {}

    def set(self, name: str, delay: float) -> None:
        """(Re)start timer `name`: it fires `delay` seconds from now."""
        self.cancel(name)
        generation = next(self._generations)
        self._current[name] = generation
        self._timers[name] = self._clock.call_later(delay, lambda: self._post(Timeout(name, generation)))

    def cancel(self, *names: str) -> None:
        for name in names:
            timer = self._timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            self._current.pop(name, None)

    def cancel_all(self) -> None:
        self.cancel(*list(self._timers))

    def due(self, timeout: Timeout) -> bool:
        """Whether `timeout` is its timer's current setting (then that timer is spent)."""
        if self._current.get(timeout.name) != timeout.generation:
            return False
        del self._current[timeout.name]
        return True

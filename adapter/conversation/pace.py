"""Whether a caller's audio comes in real time: a phone line or a microphone cannot send faster.

A client that sends audio faster than it can be spoken floods the service (every chunk is work for the
voice-activity detector, every utterance a decode), so the conversation ends a call whose audio runs
further ahead of the clock than any jitter buffer would explain.
"""

from __future__ import annotations

from adapter.calls.clock import Clock


class AudioPace:
    """Counts a call's audio against its clock; `take` says whether it is still within `ahead_s` of it."""

    def __init__(self, clock: Clock, rate: int, ahead_s: float) -> None:
        self._clock = clock
        self._bytes_per_s = 2 * rate
        self._ahead_s = ahead_s
        self._start: float | None = None
        self._audio_s = 0.0

    def take(self, size: int) -> bool:
        """Count `size` bytes of 16-bit PCM; False once the audio is more than `ahead_s` ahead."""
        now = self._clock.now()
        if self._start is None:
            self._start = now
        self._audio_s += size / self._bytes_per_s
        return self.ahead_s <= self._ahead_s

    @property
    def ahead_s(self) -> float:
        """How far the audio so far runs ahead of the time since it began."""
        if self._start is None:
            return 0.0
        return self._audio_s - (self._clock.now() - self._start)

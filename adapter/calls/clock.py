"""The one source of time: `create_app` makes one `Clock` and hands it to everything that waits.

Conversation timers, the Kore client's deadlines, retries and polls, the bot probe, the pacer,
recording retries and stream-token expiry all read it, so a test that builds the app with a manual
clock moves time by hand and never sleeps. Nothing else in `adapter/` reads `time` or calls
`asyncio.sleep` for behaviour (tests/test_one_clock.py greps for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds, one-shot timers and sleeps; plus wall time for what another machine checks."""

    def now(self) -> float:
        """Monotonic seconds: every deadline, backoff and TTL inside the process."""
        ...

    def time(self) -> float:
        """Seconds since the epoch, moving with `now`: only for times another party reads (JWT `iat`/`exp`,
        a stream token checked by another instance, an HTTP-date `Retry-After`, Kore's `createdOn`)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` on this clock (a manual clock: until a test has moved it that far)."""
        ...


class SystemClock:
    """The event loop's clock (asyncio's loop time is `time.monotonic`) and the system's wall clock."""

    def now(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

"""The heap trimmer: glibc's malloc_trim, called every TRIM_EVERY_S of the app's clock and never before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from conversation.manual_clock import ManualClock

from adapter.heap import TRIM_EVERY_S, glibc_trim, trim_forever


async def until(done: Callable[[], bool]) -> None:
    """Run the loop until `done()` (the trim's thread hop has come back); pytest-timeout ends a hang."""
    while not done():
        await asyncio.sleep(0)


def test_this_machines_c_library_has_malloc_trim_and_it_runs():
    trim = glibc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)  # 1: memory was given back, 0: there was none to give


async def test_the_heap_is_trimmed_once_per_interval_of_the_apps_clock():
    clock, trims = ManualClock(), []
    task = asyncio.create_task(trim_forever(clock, lambda: trims.append(clock.now())))
    await until(lambda: clock.pending == 1)
    clock.advance(TRIM_EVERY_S - 0.001)
    assert trims == [] and clock.pending == 1  # not due: no trim has started
    clock.advance(0.001)
    await until(lambda: len(trims) == 1 and clock.pending == 1)  # trimmed, and waiting for the next
    clock.advance(TRIM_EVERY_S)
    await until(lambda: len(trims) == 2 and clock.pending == 1)
    assert trims == [1000.0 + TRIM_EVERY_S, 1000.0 + 2 * TRIM_EVERY_S]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    clock.advance(TRIM_EVERY_S * 3)
    assert len(trims) == 2

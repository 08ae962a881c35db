"""Freed memory handed back to the system, so the service's RSS is what it really holds.

Every call churns through buffers of a few hundred bytes to a few hundred kilobytes (audio, JSON, encoded
prompts) while a few small things live on (ended call ids, kept calls, caches). glibc's malloc keeps the
freed chunks between the long-lived ones for reuse and does not return them to the system on its own:
a soak of 1,000 REST calls showed RSS rising about 16 KB a call with no Python objects left behind, and
`malloc_trim(0)` gave it back. An operator reading RSS (a dashboard, a container's memory limit, the
OOM killer) should see live memory, so the heap is trimmed every TRIM_EVERY_S on the app's clock, in a
thread. A trim walks the heap holding the allocator (~16 ms on a 580 MB fragmented heap; other threads'
allocations wait meanwhile): checked against pacing, 10 and 20 streaming calls kept their largest frame
gap (BENCHMARKS.md). Where the C library has no malloc_trim (musl, macOS) nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from adapter.app_state import CLOCK
from adapter.calls.clock import Clock

log = logging.getLogger(__name__)

#: seconds between trims
TRIM_EVERY_S = 30.0


def glibc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none. Looked up among the symbols the
    process already has (`find_library` would run ldconfig in a subprocess)."""
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


async def trim_forever(clock: Clock, trim: Callable[[], object]) -> None:
    """`trim()` every TRIM_EVERY_S of `clock`, off the event loop, until cancelled."""
    while True:
        await clock.sleep(TRIM_EVERY_S)
        await asyncio.to_thread(trim)


def add_heap_trimming(app: web.Application) -> None:
    """Trim the heap while the app runs (when the C library can)."""
    app.cleanup_ctx.append(_trimming)


async def _trimming(app: web.Application) -> AsyncIterator[None]:
    malloc_trim = glibc_trim()
    if malloc_trim is None:
        log.debug("no malloc_trim in this C library: freed heap is left to the allocator")
        yield
        return
    task = asyncio.create_task(trim_forever(app[CLOCK], lambda: malloc_trim(0)), name="heap trim")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

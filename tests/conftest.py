"""Suite-wide guard: a test fails when any callback blocks its event loop longer than SLOW_CALLBACK_S.

One call's blocking work (a disk read, a whole-recording scan) stalls every other call on the loop, and
only shows as jitter under load. asyncio's debug mode (`asyncio_debug` in pyproject) times every
callback and logs "Executing <handle> took X seconds" past the loop's `slow_callback_duration`; those
lines are collected over a test's whole run (its setup, module fixtures included, call and teardown)
and fail it at teardown. A test whose blocking is known and owned elsewhere is marked
`@pytest.mark.blocks_loop(reason=...)` until it is fixed: its lines are reported, not failed.

On a machine shared with other work (CPU burners, other suites) a callback also takes however long
its thread waited for a CPU; that wait (Linux's schedstat for the loop's thread, sampled every 10 ms) is
taken off before judging, so what trips is work that blocks the loop, not a busy machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Generator
from pathlib import Path

import pytest

#: seconds one callback may hold the loop (KORE_VOICE_TEST_SLOW_CALLBACK_S). At 0.1 s, 8 of ~1,270 tests
#: tripped on a quiet 2-core machine at 0.11-0.23 s with no time waiting for a CPU: asyncio debug mode's own
#: cost and GIL hand-offs from worker threads (which schedstat cannot see), not blocking work; what this
#: guard is for (a whole-recording DTMF scan: 0.69 s, ffmpeg or disk I/O on the loop) takes longer.
SLOW_CALLBACK_S = float(os.environ.get("KORE_VOICE_TEST_SLOW_CALLBACK_S", "0.25"))


class RunQueueWait:
    """How long the main thread (where pytest-asyncio runs its loops) waited for a CPU, sampled every
    10 ms by a daemon thread; nothing is measured where /proc/<pid>/task/<tid>/schedstat is absent."""

    def __init__(self) -> None:
        self._path = Path(f"/proc/self/task/{threading.main_thread().native_id}/schedstat")
        self._samples: deque[tuple[float, int]] = deque(maxlen=3000)  # 30 s of (monotonic, wait ns)
        self._stop = threading.Event()
        threading.Thread(target=self._sample, name="run-queue-wait", daemon=True).start()

    def _read(self) -> int | None:
        try:
            return int(self._path.read_text().split()[1])
        except (OSError, ValueError, IndexError):
            return None

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            wait = self._read()
            if wait is None:
                return
            self._samples.append((time.monotonic(), wait))

    def since(self, start: float) -> float:
        """Seconds spent waiting for a CPU from `start` (a time.monotonic()) until now."""
        now, before = self._read(), [w for t, w in list(self._samples) if t <= start]
        return (now - before[-1]) / 1e9 if now is not None and before else 0.0

    def stop(self) -> None:
        self._stop.set()


class SlowCallbacks(logging.Handler):
    """Keeps asyncio's slow-callback warnings (from any loop of the process) until taken."""

    def __init__(self, waits: RunQueueWait) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self._waits = waits

    def emit(self, record: logging.LogRecord) -> None:
        # asyncio logs ("Executing %s took %.3f seconds", handle, seconds) right after the callback
        if not str(record.msg).startswith("Executing ") or not isinstance(record.args, tuple):
            return
        took = record.args[-1]
        on_main = threading.current_thread() is threading.main_thread()
        waited = self._waits.since(time.monotonic() - took) if on_main else 0.0
        if took - waited > SLOW_CALLBACK_S:
            self.lines.append(f"{record.getMessage()} ({waited:.3f} s of it waiting for a CPU)")

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


_waits = RunQueueWait()
_slow = SlowCallbacks(_waits)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "blocks_loop(reason): the test is known to block the event loop (owned elsewhere); "
        "its slow callbacks are reported, not failed. Remove the mark once the blocking is fixed.")
    # A class attribute: every loop the suite creates (pytest-asyncio's, any scope) gets the threshold.
    asyncio.BaseEventLoop.slow_callback_duration = SLOW_CALLBACK_S
    logging.getLogger("asyncio").addHandler(_slow)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger("asyncio").removeHandler(_slow)
    _waits.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None]:
    _slow.take()  # what ran between tests (a previous module's teardown was judged with its last test)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    result = yield
    lines = _slow.take()
    if lines:
        summary = f"{len(lines)} callback(s) blocked the event loop over {SLOW_CALLBACK_S * 1000:.0f} ms:\n  " + (
            "\n  ".join(lines[:10]))
        marker = item.get_closest_marker("blocks_loop")
        if marker is None:
            pytest.fail(summary, pytrace=False)
        item.warn(pytest.PytestWarning(f"blocks_loop ({marker.kwargs.get('reason', 'no reason given')}): {summary}"))
    return result

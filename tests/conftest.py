"""Suite-wide guard: a test fails when any callback blocks its event loop: working on the CPU for more than
BUSY_CALLBACK_S, or holding the loop for more than SLOW_CALLBACK_S in all.

One call's blocking work (a disk read, a whole-recording scan) stalls every other call on the loop, and
only shows as jitter under load. asyncio's debug mode (`asyncio_debug` in pyproject) times every
callback and logs "Executing <handle> took X seconds" past the loop's `slow_callback_duration`; those
lines are collected over a test's whole run (its setup, module fixtures included, call and teardown)
and fail it at teardown. A test whose blocking is known and owned elsewhere is marked
`@pytest.mark.blocks_loop(reason=...)` until it is fixed: its lines are reported, not failed.

Two measures, from Linux's schedstat for the loop's thread (sampled every 10 ms): the time the thread ran
on a CPU during the callback, judged against BUSY_CALLBACK_S (100 ms: CPU-bound work on the loop, such as a
whole-recording DTMF scan, trips it however busy the machine is); and the callback's whole time less the
time the thread waited for a CPU, judged against SLOW_CALLBACK_S (250 ms: blocking I/O or a child process
waited for on the loop). The second is looser because the thread also sleeps while another thread holds
the GIL, which schedstat cannot tell from I/O: at 100 ms it tripped on 8 of ~1,270 tests on a quiet
machine, at 0.11-0.23 s, with no work of the loop's own behind it. On a loaded machine the thread holding
the GIL itself waits for a CPU, so the second measure also leaves out the time the machine was short of
CPU (Linux's pressure stall information, /proc/pressure/cpu "some"): 0.4-0.7 s callbacks with 3 ms on a
CPU tripped it with seven test runs sharing two cores. The time the thread slept on a lock (the futex system
call, sampled from /proc/<pid>/task/<tid>/syscall: the GIL held by another thread, or a lock or future the
callback waited for) is reported beside a failure but still counted: a loop waiting on a lock is blocked.
Garbage collection is left out of both:
a full collection of the suite's millions of objects (0.1-0.2 s) lands in whatever callback allocates
when it is due, which is the suite's size, not the code's blocking.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

#: CPU seconds one callback may work on the loop's thread (KORE_VOICE_TEST_BUSY_CALLBACK_S)
BUSY_CALLBACK_S = float(os.environ.get("KORE_VOICE_TEST_BUSY_CALLBACK_S", "0.1"))
#: seconds one callback may hold the loop in all, waits for a CPU left out (KORE_VOICE_TEST_SLOW_CALLBACK_S)
SLOW_CALLBACK_S = float(os.environ.get("KORE_VOICE_TEST_SLOW_CALLBACK_S", "0.25"))


FUTEX = "202"  # x86-64's futex system call: a thread asleep on a lock (the GIL, inside a callback)


class RunQueueWait:
    """How long the main thread (where pytest-asyncio runs its loops) ran on a CPU, waited for one and slept on
    a lock, and how long the machine was short of CPU, sampled every 10 ms by a daemon thread; nothing is
    measured where /proc/<pid>/task/<tid>/schedstat is absent (then a callback's CPU time counts as its whole
    time)."""

    def __init__(self) -> None:
        task = Path(f"/proc/self/task/{threading.main_thread().native_id}")
        self._path, self._syscall = task / "schedstat", task / "syscall"
        self._pressure = Path("/proc/pressure/cpu")
        # 30 s of (monotonic, ns on a CPU, ns waiting for one, µs the machine was short of CPU, s on a lock)
        self._samples: deque[tuple[float, int, int, int, float]] = deque(maxlen=3000)
        self._locked = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, name="run-queue-wait", daemon=True).start()

    def _read(self) -> tuple[int, int, int] | None:
        try:
            ran, waited = self._path.read_text().split()[:2]
        except (OSError, ValueError):
            return None
        return int(ran), int(waited), self._short_us()

    def _short_us(self) -> int:
        """Microseconds some task of the machine waited for a CPU (0 without pressure information)."""
        try:
            some = self._pressure.read_text().splitlines()[0]
            return int(some.rpartition("total=")[2])
        except (OSError, ValueError, IndexError):
            return 0

    def _on_lock(self) -> bool:
        try:
            return self._syscall.read_text().split(maxsplit=1)[0] == FUTEX
        except (OSError, IndexError):
            return False

    def _sample(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.01):
            now, at = self._read(), time.monotonic()
            if now is None:
                return
            if self._on_lock():
                self._locked += at - last  # the slot since the previous sample counts as asleep on the lock
            last = at
            self._samples.append((at, *now, self._locked))

    def since(self, start: float) -> tuple[float, float, float, float] | None:
        """Seconds (on a CPU, waiting for one, the machine short of CPU, asleep on a lock) from `start` (a
        time.monotonic()) until now; None unknown."""
        now, before = self._read(), [s for s in list(self._samples) if s[0] <= start]
        if now is None or not before:
            return None
        first = before[-1]
        return ((now[0] - first[1]) / 1e9, (now[1] - first[2]) / 1e9, (now[2] - first[3]) / 1e6,
                self._locked - first[4])

    def stop(self) -> None:
        self._stop.set()


class CollectionPauses:
    """When the main thread collected garbage, and for how long (gc's own callbacks)."""

    def __init__(self) -> None:
        self._pauses: deque[tuple[float, float]] = deque(maxlen=1000)  # (ended, seconds)
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        now = time.monotonic()
        if phase == "start":
            self._started = now
        elif self._started:
            self._pauses.append((now, now - self._started))

    def since(self, start: float) -> float:
        """Seconds the main thread spent collecting garbage from `start` until now."""
        return sum(seconds for ended, seconds in list(self._pauses) if ended >= start)


class SlowCallbacks(logging.Handler):
    """Keeps asyncio's slow-callback warnings (from any loop of the process) until taken."""

    def __init__(self, waits: RunQueueWait, collections: CollectionPauses) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self._waits = waits
        self._collections = collections

    def emit(self, record: logging.LogRecord) -> None:
        # asyncio logs ("Executing %s took %.3f seconds", handle, seconds) right after the callback
        if not str(record.msg).startswith("Executing ") or not isinstance(record.args, tuple):
            return
        took = record.args[-1]
        start = time.monotonic() - took
        on_main = threading.current_thread() is threading.main_thread()
        measured = self._waits.since(start) if on_main else None
        ran, waited, short, locked = measured if measured is not None else (took, 0.0, 0.0, 0.0)
        collecting = self._collections.since(start) if on_main else 0.0
        held = took - max(waited, min(short, took - ran)) - collecting
        if ran - collecting > BUSY_CALLBACK_S or held > SLOW_CALLBACK_S:
            self.lines.append(f"{record.getMessage()} ({ran:.3f} s of it on a CPU, {waited:.3f} s waiting for one, "
                              f"{short:.3f} s with the machine short of CPU, {locked:.3f} s asleep on a lock, "
                              f"{collecting:.3f} s collecting garbage)")

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


_waits = RunQueueWait()
_slow = SlowCallbacks(_waits, CollectionPauses())


def _source_lines_later(f: Any = None, limit: int | None = None) -> traceback.StackSummary:
    """traceback.extract_stack, its source lines read when shown instead of when taken; runs as its code."""
    if f is None:
        f = sys._getframe().f_back
    stack = StackSummary.extract(walk_stack(f), limit=limit, lookup_lines=False)  # noqa: F821 - traceback's
    stack.reverse()
    return stack


def _light_debug_tracebacks() -> None:
    """asyncio's debug mode records where every Future was made: the C Future with traceback.extract_stack,
    which reads the source line of each of the stack's frames (a first read of each file) and stats each
    frame's file (linecache.checkcache) every time. With pytest's deep stacks that was 0.4-0.9 s of
    file-system waits on the loop at a service's start, which the guard counted as the code's blocking
    (a CI failure). The C Future holds extract_stack itself, so its code is swapped for one that leaves the
    lines to be read when a traceback is shown; and the suite's files do not change while it runs."""
    traceback.extract_stack.__code__ = _source_lines_later.__code__
    linecache.checkcache = lambda filename=None: None


def pytest_configure(config: pytest.Config) -> None:
    _light_debug_tracebacks()
    config.addinivalue_line(
        "markers", "blocks_loop(reason): the test is known to block the event loop (owned elsewhere); "
        "its slow callbacks are reported, not failed. Remove the mark once the blocking is fixed.")
    # A class attribute: every loop the suite creates (pytest-asyncio's, any scope) gets the threshold.
    asyncio.BaseEventLoop.slow_callback_duration = min(BUSY_CALLBACK_S, SLOW_CALLBACK_S)
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
        summary = (f"{len(lines)} callback(s) blocked the event loop (over {BUSY_CALLBACK_S * 1000:.0f} ms on a CPU "
                   f"or {SLOW_CALLBACK_S * 1000:.0f} ms in all):\n  ") + (
            "\n  ".join(lines[:10]))
        marker = item.get_closest_marker("blocks_loop")
        if marker is None:
            pytest.fail(summary, pytrace=False)
        item.warn(pytest.PytestWarning(f"blocks_loop ({marker.kwargs.get('reason', 'no reason given')}): {summary}"))
    return result

"""The suite's loop guard (tests/conftest.py) catches a callback that works on the loop's CPU, sleeps on it, or
waits there for a lock another thread keeps (and says so)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

BUSY_CALLBACK_S = float(os.environ.get("KORE_VOICE_TEST_BUSY_CALLBACK_S", "0.1"))
SLOW_CALLBACK_S = float(os.environ.get("KORE_VOICE_TEST_SLOW_CALLBACK_S", "0.25"))


def guard() -> logging.Handler:
    """The guard conftest.py attached to asyncio's logger (conftest is not importable as a module)."""
    return next(h for h in logging.getLogger("asyncio").handlers if hasattr(h, "take"))


def spin(seconds: float) -> None:
    """Work on the CPU (not sleep) for `seconds` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_a_callback_busy_on_the_cpu_is_caught_however_loaded_the_machine():
    asyncio.get_running_loop().call_soon(spin, BUSY_CALLBACK_S * 1.5)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    lines = guard().take()
    assert len(lines) == 1 and "spin" in lines[0] and "on a CPU" in lines[0]


async def test_a_short_callback_is_not():
    asyncio.get_running_loop().call_soon(spin, BUSY_CALLBACK_S / 4)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert guard().take() == []


async def test_a_callback_that_sleeps_on_the_loop_is_caught():
    asyncio.get_running_loop().call_soon(time.sleep, SLOW_CALLBACK_S * 2)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    lines = guard().take()
    assert len(lines) == 1 and "sleep" in lines[0]


async def test_a_callback_waiting_for_another_threads_lock_is_caught_as_asleep_on_a_lock():
    lock, taken = threading.Lock(), threading.Event()

    def keep() -> None:
        with lock:
            taken.set()
            time.sleep(SLOW_CALLBACK_S * 2)

    keeper = threading.Thread(target=keep)
    keeper.start()
    taken.wait()

    def wait_for_lock() -> None:
        with lock:
            pass

    asyncio.get_running_loop().call_soon(wait_for_lock)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    keeper.join()
    lines = guard().take()
    assert len(lines) == 1 and "wait_for_lock" in lines[0]
    locked = float(lines[0].split(" s asleep on a lock")[0].rpartition(", ")[2])
    assert locked >= SLOW_CALLBACK_S  # the 10 ms samples saw the thread in futex for most of the wait

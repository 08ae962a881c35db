"""The suite's loop guard (tests/conftest.py) catches a callback that works on the loop's CPU."""

from __future__ import annotations

import asyncio
import logging
import os
import time

BUSY_CALLBACK_S = float(os.environ.get("KORE_VOICE_TEST_BUSY_CALLBACK_S", "0.1"))


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

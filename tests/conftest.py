"""Suite-wide guard: a test fails when any callback blocks its event loop longer than SLOW_CALLBACK_S.

One call's blocking work (a disk read, a whole-recording scan) stalls every other call on the loop, and
only shows as jitter under load. asyncio's debug mode (`asyncio_debug` in pyproject) times every
callback and logs "Executing <handle> took X seconds" past the loop's `slow_callback_duration`; those
lines are collected over a test's whole run (its setup, module fixtures included, call and teardown)
and fail it at teardown. A test whose blocking is known and owned elsewhere is marked
`@pytest.mark.blocks_loop(reason=...)` until it is fixed: its lines are reported, not failed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Generator

import pytest

#: seconds one callback may hold the loop; raise it (KORE_VOICE_TEST_SLOW_CALLBACK_S) on a slow machine
SLOW_CALLBACK_S = float(os.environ.get("KORE_VOICE_TEST_SLOW_CALLBACK_S", "0.1"))


class SlowCallbacks(logging.Handler):
    """Keeps asyncio's slow-callback warnings (from any loop of the process) until taken."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing "):
            self.lines.append(message)

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


_slow = SlowCallbacks()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "blocks_loop(reason): the test is known to block the event loop (owned elsewhere); "
        "its slow callbacks are reported, not failed. Remove the mark once the blocking is fixed.")
    # A class attribute: every loop the suite creates (pytest-asyncio's, any scope) gets the threshold.
    asyncio.BaseEventLoop.slow_callback_duration = SLOW_CALLBACK_S
    logging.getLogger("asyncio").addHandler(_slow)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger("asyncio").removeHandler(_slow)


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

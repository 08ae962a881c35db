"""Fakes shared by the Kore.ai tests: the test app's credentials and a clock that moves only when slept on."""

from __future__ import annotations

import asyncio

from conversation.manual_clock import ManualClock

from adapter.config import Secret

SECRET = Secret("simulator-test-secret-0123456789abcdef0123456789abcdef0123456789")
CLIENT_ID = "cs-test-app"
BOT_ID = "st-test-bot"


class FakeTime(ManualClock):
    """A manual clock that a sleeper moves itself: the client's backoffs and polls and the simulator's
    slow steps cost no real time, and `slept` records what was waited for."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        self.advance(delay)
        await asyncio.sleep(0)

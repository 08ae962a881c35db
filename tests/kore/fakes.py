"""Fakes shared by the Kore.ai tests: the test app's credentials and a clock that moves only when slept on."""

from __future__ import annotations

import asyncio

from adapter.config import Secret

SECRET = Secret("simulator-test-secret-0123456789abcdef0123456789abcdef0123456789")
CLIENT_ID = "cs-test-app"
BOT_ID = "st-test-bot"


class FakeTime:
    """Monotonic and wall clocks that only move when someone sleeps."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = 1_790_000_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

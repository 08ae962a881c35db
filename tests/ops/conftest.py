from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from simulated_bot import SimulatedBot, simulated_bot


@pytest_asyncio.fixture
async def bot() -> AsyncIterator[SimulatedBot]:
    """The Kore.ai simulator (the banking IVR) in the test's process: what each instance sent it."""
    async with simulated_bot() as simulated:
        yield simulated

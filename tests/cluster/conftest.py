"""Cluster tests: a real redis-server per test, the Kore.ai simulator as every instance's bot, and
services built on them (several in one process share the Redis as instances on several machines would)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio
import redis.asyncio
from conversation.manual_clock import ManualClock
from simulated_bot import SimulatedBot, simulated_bot

from adapter.config import Settings
from cluster.redis_server import RedisServer, redis_server


@pytest_asyncio.fixture
async def redis_db(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with redis_server(tmp_path) as server:
        yield server


@pytest_asyncio.fixture
async def peek(redis_db: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    """The test's own client, to look at what the service left in Redis."""
    client = redis.asyncio.Redis.from_url(redis_db.url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def bot() -> AsyncIterator[SimulatedBot]:
    async with simulated_bot() as simulated:
        yield simulated


def cluster_settings(redis_db: RedisServer, bot: SimulatedBot, **env: str) -> Settings:
    """An instance on `redis_db` aimed at `bot`, with PocketSphinx."""
    return Settings.load(environ={"KORE_VOICE_ASR": "pocketsphinx", "KORE_VOICE_REDIS_URL": redis_db.url,
                                  **bot.env(), **env})


def wall_clock() -> ManualClock:
    """A manual clock whose wall time is now's: leases it writes and reads compare with a real instance's."""
    return ManualClock(start=time.time() - ManualClock().time() + ManualClock().now())


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait for what the services do in real time (Redis, HTTP, another process on its own clock), polling."""
    async with asyncio.timeout(timeout):
        while not (await met if inspect.isawaitable(met := condition()) else met):
            await asyncio.sleep(0.02)

"""Single-use tokens: a token's MAC is spent once, in this process (`MemorySpent`) or across every
instance (`RedisSpent`: SET NX, kept until the token would be refused as expired anyway)."""

from __future__ import annotations

import math
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapter.calls.clock import Clock


class SpentUnknown(Exception):
    """Whether the token was spent cannot be known (Redis unreachable)."""


class SpentTokens(Protocol):
    async def spend(self, mac: bytes, expires_at: float) -> bool:
        """Mark the token spent; False when it already was. `expires_at` is wall time (Clock.time).

        Raises:
            SpentUnknown: the shared record cannot be reached; a token nobody can check lets nothing in.
        """
        ...


class MemorySpent:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._spent: dict[bytes, float] = {}  # MAC -> expiry

    async def spend(self, mac: bytes, expires_at: float) -> bool:
        now = self._clock.time()
        self._spent = {m: at for m, at in self._spent.items() if at >= now}
        if mac in self._spent:
            return False
        self._spent[mac] = expires_at
        return True


class RedisSpent:
    def __init__(self, redis: Redis, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    async def spend(self, mac: bytes, expires_at: float) -> bool:
        keep_s = max(1, math.ceil(expires_at - self._clock.time()) + 1)
        try:
            return bool(await self._redis.set(f"kv:token:{mac.hex()}", b"1", nx=True, ex=keep_s))
        except RedisError as exc:
            raise SpentUnknown(f"Redis: {exc}") from None

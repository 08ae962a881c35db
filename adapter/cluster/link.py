"""The connection to Redis, its health, and how many commands the service sends it.

Health is what the latest command met: every command that reaches Redis clears the problem, a
connection error or timeout sets it. The lease's heartbeat runs a command every few seconds, so an
outage is seen, and its end too (no restart), even on an idle instance; readiness asks afresh.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError, TimeoutError

#: the cluster's client, in an app on Redis (KORE_VOICE_REDIS_URL) only: for the doors' shared records
SHARED_REDIS = web.AppKey("shared_redis", Redis)
#: a command that waits longer is a failure (a blocking read waits less: bus.BLOCK_MS)
SOCKET_TIMEOUT_S = 3.0


class CountedRedis(Redis):
    """redis-py's asyncio client, counting commands and remembering why the last one failed."""

    commands: Counter | None = None
    problem: str | None = "not connected yet"

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.commands is not None:
            self.commands.inc()
        try:
            result = await super().execute_command(*args, **options)
        except (ConnectionError, TimeoutError, OSError) as exc:
            self.problem = " ".join(str(exc).split()) or type(exc).__name__
            raise
        self.problem = None
        return result


class RedisLink:
    """One client (its pool) per app; commands fail at once, never retried behind the caller's back:
    each caller knows whether a retry makes sense."""

    def __init__(self, url: str, registry: CollectorRegistry) -> None:
        self.redis = CountedRedis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S,
                                           socket_connect_timeout=SOCKET_TIMEOUT_S, retry=Retry(NoBackoff(), 0))
        self.redis.commands = Counter("kore_voice_redis_commands", "Commands sent to Redis (shared state).",
                                      registry=registry)
        kwargs = self.redis.connection_pool.connection_kwargs
        self.where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"  # never the password

    @property
    def problem(self) -> str | None:
        """Why Redis cannot be used now; None when the last command reached it."""
        return self.redis.problem

    async def check(self) -> str | None:
        """Ask Redis now (readiness); returns the problem, if any."""
        with contextlib.suppress(RedisError):  # the client has noted why
            await self.redis.ping()
        return self.problem

    async def close(self) -> None:
        await self.redis.aclose()

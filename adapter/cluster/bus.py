"""Messages to one instance: a Redis stream per instance (`kv:bus:{instance}`).

A stream, not pub/sub: an entry waits in Redis until its instance reads it (a pub/sub message sent
while the subscriber reconnects is lost), and the reader walks the entries in the order they were
added, each once, from the last id it has seen, deleting them once handled. Instance ids are fresh
per process, so a reader starts at the stream's beginning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapter.calls.clock import Clock

log = logging.getLogger(__name__)

#: a read waits this long for an entry, below the client's socket timeout (link.SOCKET_TIMEOUT_S)
BLOCK_MS = 1000
#: entries kept per stream (approximately): far more than a live instance ever leaves unread
MAX_ENTRIES = 10_000
#: after a failed read, wait this long (on the app's clock) before the next
RETRY_S = 1.0
FIELD = b"m"


def stream_key(instance: str) -> str:
    return f"kv:bus:{instance}"


class Bus:
    def __init__(self, redis: Redis, instance: str, clock: Clock) -> None:
        self._redis = redis
        self._instance = instance
        self._clock = clock

    async def send(self, instance: str, message: bytes) -> None:
        """Queue `message` for `instance`. Raises RedisError."""
        await self._redis.xadd(stream_key(instance), {FIELD: message}, maxlen=MAX_ENTRIES, approximate=True)

    async def receive(self, handle: Callable[[bytes], None]) -> None:
        """Hand this instance's messages to `handle`, in order, each once, until cancelled; each batch
        handled is deleted (bot replies are callers' data: they do not stay in Redis once delivered)."""
        key, last = stream_key(self._instance), "0-0"
        failing = False
        while True:
            try:
                for _, entries in await self._redis.xread({key: last}, count=100, block=BLOCK_MS):
                    for entry_id, fields in entries:
                        last = entry_id
                        self._hand(handle, entry_id, fields)
                    await self._redis.xdel(key, *(entry_id for entry_id, _ in entries))
            except RedisError as exc:
                if not failing:
                    log.warning("bus of %s: cannot read: Redis: %s", self._instance, exc)
                failing = True
                await self._clock.sleep(RETRY_S)
                continue
            failing = False

    def _hand(self, handle: Callable[[bytes], None], entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            handle(fields[FIELD])
        except Exception:  # one bad message must not stop the others
            log.exception("bus of %s: message %s failed", self._instance, entry_id)

    async def close(self) -> None:
        """Drop this instance's stream on a clean stop."""
        try:
            await self._redis.delete(stream_key(self._instance))
        except RedisError as exc:
            log.warning("bus of %s not deleted: Redis: %s", self._instance, exc)

"""Each instance's lease, and what a survivor does when an instance dies.

Instances are the members of the sorted set `kv:instances`, scored by when their lease ends (wall
time from the app's clock: every instance reads the same score). An instance renews its lease every
third of KORE_VOICE_LEASE_S; at each renewal it also looks for leases that have ended and closes those
instances' calls: `SESSION_CLOSURE` to the bot for each call they ran, once (each call is claimed
atomically by one survivor), then forgets them. Nothing can save the dead instance's streams (their
TCP connections died with it); other calls are untouched.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapter.calls.bot import BotError
from adapter.calls.clock import Clock
from adapter.calls.info import CallInfo
from adapter.cluster.bus import stream_key
from adapter.conversation.store import RedisStore, owned_key

log = logging.getLogger(__name__)

INSTANCES = "kv:instances"
RENEWALS_PER_LEASE = 3


def new_instance_id() -> str:
    """A fresh id per process: a restarted instance is a new one, and its predecessor's calls are reaped."""
    return f"instance-{uuid.uuid4().hex[:12]}"


class Lease:
    """This instance's lease: renewed on the clock until `release`; reaps instances whose lease ended."""

    def __init__(self, redis: Redis, store: RedisStore, clock: Clock, lease_s: float,
                 end_session: Callable[[CallInfo], Awaitable[None]]) -> None:
        self._redis = redis
        self._store = store
        self._clock = clock
        self._lease_s = lease_s
        self._end_session = end_session
        self.instance = store.owner
        self._failing = False

    async def run(self) -> None:
        """Renew and reap until cancelled; a Redis outage is logged once and waited out. Reaping runs
        beside the renewals, never holding them up: closing many sessions takes Kore.ai requests, and a
        survivor whose own lease lapsed meanwhile would be reaped in turn, its live calls with it."""
        reaping: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                try:
                    for dead in await self.renew():
                        if dead not in reaping:
                            reaping[dead] = asyncio.create_task(self.reap(dead), name=f"reap {dead}")
                            reaping[dead].add_done_callback(lambda _, dead=dead: reaping.pop(dead, None))
                    if self._failing:
                        log.info("Redis is back: lease of %s renewed", self.instance)
                    self._failing = False
                except RedisError as exc:
                    if not self._failing:
                        log.warning("lease of %s not renewed: Redis: %s", self.instance, exc)
                    self._failing = True
                await self._clock.sleep(self._lease_s / RENEWALS_PER_LEASE)
        finally:
            tasks = list(reaping.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def renew(self) -> list[str]:
        """Renew this instance's lease; the other instances whose lease has ended."""
        now = self._clock.time()
        await self._redis.zadd(INSTANCES, {self.instance: now + self._lease_s})
        await self._release_again()
        ended = await self._redis.zrangebyscore(INSTANCES, "-inf", f"({now}")
        return [name for dead in ended if (name := dead.decode()) != self.instance]

    async def _release_again(self) -> None:
        """Mark the end of calls that ended here while Redis was unreachable (their sessions are closed):
        left as they were, they would be closed again if this instance died before their state expired."""
        for call_id in list(self._store.unreleased):
            self._store.unreleased.discard(call_id)
            await self._store.release(call_id)  # failing again, it is noted again

    async def reap(self, dead: str) -> None:
        """Close the calls `dead` ran (unless another instance has taken one over since). Each is claimed
        as its owner would have ended it (`release`, atomic): of survivors reaping at once, one closes
        it. `dead` leaves the cluster once all are closed: a survivor dying half-way leaves the rest to
        the next. A survivor dying between a claim and its `SESSION_CLOSURE` leaves that one session
        to Kore's own expiry: at most once, never twice. A Redis failure leaves the rest to a later renewal."""
        try:
            await self._close_calls(dead)
        except RedisError as exc:
            log.warning("instance %s died; its calls not all closed yet: Redis: %s", dead, exc)

    async def _close_calls(self, dead: str) -> None:
        as_owner = RedisStore(self._redis, dead, self._store.ttl_s)
        call_ids = [c.decode() for c in await self._redis.smembers(owned_key(dead))]
        log.warning("instance %s died (lease ended): closing its %d calls' bot sessions", dead, len(call_ids))
        for call_id in call_ids:
            stored = await self._store.stored(call_id)
            if stored is None or stored.owner != dead or not await as_owner.release(call_id):
                continue
            try:
                await self._end_session(stored.state.call)
            except BotError as exc:
                log.warning("call %s (of dead %s): SESSION_CLOSURE failed: %s", call_id, dead, exc)
        await self._redis.delete(owned_key(dead), stream_key(dead))
        await self._redis.zrem(INSTANCES, dead)

    async def release(self) -> None:
        """Leave the cluster on a clean stop (its calls are hung up already)."""
        try:
            await self._redis.zrem(INSTANCES, self.instance)
        except RedisError as exc:
            log.warning("lease of %s not released: Redis: %s", self.instance, exc)

"""Closing a dead instance's calls, on a real redis-server: a survivor that dies half-way leaves the rest to
another, none closed twice; a call that ended while Redis was down is not closed again when its instance
later dies."""

from __future__ import annotations

import asyncio
import json

from doors.conftest import running

from adapter.calls.info import CallInfo
from adapter.cluster.leases import INSTANCES, RENEWALS_PER_LEASE, Lease
from adapter.cluster.wiring import CLUSTER
from adapter.conversation.store import CallState, RedisStore
from cluster.conftest import cluster_settings, until, wall_clock

LEASE_S = 3.0
DEAD = "instance-dead"


class Survivor:
    """A survivor's lease, the sessions it closes recorded; `stall_at` (the nth) hangs, as a survivor
    whose process dies in the middle of that request."""

    def __init__(self, redis, clock, name: str, stall_at: int | None = None) -> None:
        self.closed: list[str] = []
        self._stall_at = stall_at
        self.lease = Lease(redis, RedisStore(redis, name, 600), clock, LEASE_S, self.close)

    async def close(self, call: CallInfo) -> None:
        self.closed.append(call.user_id)
        if len(self.closed) == self._stall_at:
            await asyncio.Event().wait()


async def test_a_survivor_dying_half_way_through_a_dead_instances_calls_leaves_the_rest_to_another(peek):
    clock = wall_clock()
    calls = [f"call-{n}" for n in range(4)]
    dead = RedisStore(peek, DEAD, 600)
    for call in calls:
        await dead.put(call, CallState(CallInfo(call)))
    await peek.zadd(INSTANCES, {DEAD: 0})  # its lease ended long ago

    first = Survivor(peek, clock, "instance-first", stall_at=2)
    reaping = asyncio.create_task(first.lease.reap(DEAD))
    await until(lambda: len(first.closed) == 2)
    reaping.cancel()  # the first survivor dies while closing the second call
    second = Survivor(peek, clock, "instance-second")
    assert await second.lease.renew() == [DEAD]  # still in the cluster: its calls are not all closed
    await second.lease.reap(DEAD)

    assert sorted(first.closed + second.closed) == calls  # each once: the one in flight was the first's
    assert await peek.zscore(INSTANCES, DEAD) is None
    assert await peek.exists(f"kv:owned:{DEAD}", *(f"kv:call:{c}" for c in calls)) == 0


async def test_a_survivor_keeps_renewing_its_own_lease_while_closing_sessions_takes_long(peek):
    clock = wall_clock()
    await RedisStore(peek, DEAD, 600).put("call-0", CallState(CallInfo("call-0")))
    await peek.zadd(INSTANCES, {DEAD: 0})
    survivor = Survivor(peek, clock, "instance-survivor", stall_at=1)  # the bot does not answer its closure
    running_lease = asyncio.create_task(survivor.lease.run())
    try:
        await until(lambda: survivor.closed == ["call-0"])
        for _ in range(3 * RENEWALS_PER_LEASE):  # three whole leases
            clock.advance(LEASE_S / RENEWALS_PER_LEASE)
            await until(lambda: _renewed(peek, survivor, clock))
    finally:
        running_lease.cancel()
        await asyncio.gather(running_lease, return_exceptions=True)


async def _renewed(peek, survivor: Survivor, clock) -> bool:
    return await peek.zscore(INSTANCES, survivor.lease.instance) == clock.time() + LEASE_S


async def test_a_call_ended_while_redis_was_down_is_not_closed_again_when_its_instance_dies(redis_db, peek, bot):
    clock = wall_clock()
    settings = cluster_settings(redis_db, bot, KORE_VOICE_LEASE_S=str(LEASE_S))
    async with running(settings, clock=clock) as client, client.ws_connect("/v1/stream") as kiosk:
        await kiosk.send_json({"type": "start", "from": "+15551230000", "to": "+15559870000", "format": "l16"})
        while (event := json.loads((await kiosk.receive(timeout=60)).data))["type"] != "started":
            pass
        call = event["id"]
        await until(lambda: peek.exists(f"kv:call:{call}"))
        await redis_db.stop()
        await kiosk.send_json({"type": "stop"})
        async for _ in kiosk:  # what was on its way, until the service closes the socket
            pass
        await until(lambda: bot.closures(call) == 1)  # the call ends, its session closed, Redis or not
        await redis_db.start()
        clock.advance(LEASE_S / RENEWALS_PER_LEASE)  # the instance's next renewal
        await until(lambda: peek.exists(f"kv:ended:{call}"))
        instance = client.server.app[CLUSTER].instance

    survivor = Survivor(peek, clock, "instance-survivor")
    await survivor.lease.reap(instance)  # as if it died (SIGKILL) within the call state's TTL
    assert survivor.closed == []
    assert await peek.exists(f"kv:call:{call}") == 0

"""Two instances on one Redis: a stream token spent on one is refused on the other; an instance killed
with SIGKILL has its calls' bot sessions closed, once, by a survivor once its lease has ended."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

import aiohttp
import pytest
from doors.conftest import running, start_call
from serve_process import serving

from adapter.cluster.leases import RENEWALS_PER_LEASE
from adapter.doors.twilio.media import STREAM_TOKENS
from adapter.doors.twilio.stream_token import StreamTokenError
from cluster.conftest import cluster_settings, until, wall_clock

LEASE_S = 3.0
SID = "CA" + "c" * 32
MEDIA = {"KORE_VOICE_TWILIO_MODE": "media-streams", "TWILIO_AUTH_TOKEN": "auth-token-0123456789abcdef"}


async def test_a_stream_token_redeemed_on_one_instance_is_refused_on_another(redis_db, bot):
    clock = wall_clock()
    async with running(cluster_settings(redis_db, bot, **MEDIA), clock=clock) as one, \
            running(cluster_settings(redis_db, bot, **MEDIA), clock=clock) as other:
        token = one.server.app[STREAM_TOKENS].issue(SID, "+15551230000", "+15559870000")
        assert (await other.server.app[STREAM_TOKENS].redeem(token, SID)).call_sid == SID
        with pytest.raises(StreamTokenError, match="already used"):
            await one.server.app[STREAM_TOKENS].redeem(token, SID)


async def renewals(clock, count: int) -> None:
    """Move the survivors' clock renewal by renewal, letting each renewal reach Redis."""
    for _ in range(count):
        clock.advance(LEASE_S / RENEWALS_PER_LEASE)
        await asyncio.sleep(0.1)  # Redis answers in real time; the renewals' timing is the clock's


async def test_a_killed_instances_calls_are_closed_once_by_a_survivor_and_no_other_call(redis_db, peek, bot):
    clock = wall_clock()
    env = {"KORE_VOICE_REDIS_URL": redis_db.url, "KORE_VOICE_LEASE_S": str(LEASE_S), **bot.env()}
    with contextlib.suppress(ProcessLookupError):  # stopping a killed process finds it gone
        async with serving(**env) as doomed:
            async with aiohttp.ClientSession() as http:
                resp = await http.post(f"http://127.0.0.1:{doomed.port}/v1/calls",
                                       json={"from": "+15551230000", "to": "+15559870000"})
                assert resp.status == 201, await resp.text()
                dead_call = (await resp.json())["id"]
            survivor = cluster_settings(redis_db, bot, KORE_VOICE_LEASE_S=str(LEASE_S))
            async with running(survivor, clock=clock) as one, running(survivor, clock=clock):
                live_call = (await start_call(one))["id"]
                await renewals(clock, 3)  # the doomed instance renews on its own clock: still alive
                assert bot.closures(dead_call) == 0
                doomed.process.kill()
                await doomed.process.wait()
                # its lease (wall time) runs out on the survivors' clock, renewal by renewal
                await renewals(clock, math.ceil((time.time() - clock.time()) * RENEWALS_PER_LEASE / LEASE_S)
                               + 2 * RENEWALS_PER_LEASE)
                await until(lambda: bot.closures(dead_call) == 1)
                await renewals(clock, RENEWALS_PER_LEASE)
                assert bot.closures(dead_call) == 1
                assert bot.closures(live_call) == 0
                assert await peek.exists(f"kv:call:{dead_call}") == 0
                assert await peek.exists(f"kv:call:{live_call}") == 1
                assert (await one.post(f"/v1/calls/{live_call}/turns", json={"digits": "1"})).status == 200

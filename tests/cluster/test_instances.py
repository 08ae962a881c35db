"""Two instances on one Redis: a stream token spent on one is refused on the other; an instance killed
with SIGKILL has its calls' bot sessions closed, once, by a survivor once its lease has ended."""

from __future__ import annotations

import contextlib
import math
import time

import aiohttp
import pytest
from doors.conftest import running, start_call
from serve_process import serving

from adapter.cluster.leases import INSTANCES, RENEWALS_PER_LEASE
from adapter.cluster.wiring import CLUSTER
from adapter.doors.twilio.media import STREAM_TOKENS
from adapter.doors.twilio.stream_token import StreamTokenError
from cluster.conftest import cluster_settings, until, wall_clock

LEASE_S = 3.0
SURVIVOR_LEASE_S = 30.0
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


async def renewals(clock, count: int, peek, survivors) -> None:
    """Move the survivors' clock renewal by renewal, each time letting every survivor renew its lease (Redis
    answers in real time). A survivor that schedules its next renewal only after the clock moved renews a
    step later: harmless, a lease lasts three."""
    instances = [s.server.app[CLUSTER].instance for s in survivors]
    for _ in range(count):
        clock.advance(SURVIVOR_LEASE_S / RENEWALS_PER_LEASE)
        with contextlib.suppress(TimeoutError):
            await until(lambda: all_renewed(peek, instances, clock), timeout=1.0)


async def all_renewed(peek, instances: list[str], clock) -> bool:
    scores = [await peek.zscore(INSTANCES, instance) or 0 for instance in instances]
    return min(scores) >= clock.time() + SURVIVOR_LEASE_S


async def test_a_killed_instances_calls_are_closed_once_by_a_survivor_and_no_other_call(redis_db, peek, bot):
    env = {"KORE_VOICE_REDIS_URL": redis_db.url, "KORE_VOICE_LEASE_S": str(LEASE_S), **bot.env()}
    with contextlib.suppress(ProcessLookupError):  # stopping a killed process finds it gone
        async with serving(**env) as doomed:
            async with aiohttp.ClientSession() as http:
                resp = await http.post(f"http://127.0.0.1:{doomed.port}/v1/calls",
                                       json={"from": "+15551230000", "to": "+15559870000"})
                assert resp.status == 201, await resp.text()
                dead_call = (await resp.json())["id"]
            # The doomed instance runs on real time, the survivors on a clock the test moves: their leases are
            # long, so that however long they take to start the doomed one finds them alive; the live call must
            # not time out on their clock either.
            clock = wall_clock()
            survivor = cluster_settings(redis_db, bot, KORE_VOICE_LEASE_S=str(SURVIVOR_LEASE_S),
                                        KORE_VOICE_NO_INPUT_SECONDS="3600")
            async with running(survivor, clock=clock) as one, running(survivor, clock=clock) as two:
                live_call = (await start_call(one))["id"]
                assert bot.closures(dead_call) == 0  # the survivors' first renewals found it alive
                doomed.process.kill()
                await doomed.process.wait()
                # its lease (wall time) runs out on the survivors' clock, renewal by renewal
                ended_in = time.time() + LEASE_S - clock.time()
                await renewals(clock, math.ceil(ended_in * RENEWALS_PER_LEASE / SURVIVOR_LEASE_S) + 1, peek, (one, two))
                await until(lambda: bot.closures(dead_call) == 1)
                await renewals(clock, RENEWALS_PER_LEASE, peek, (one, two))
                assert bot.closures(dead_call) == 1
                assert bot.closures(live_call) == 0
                assert await peek.exists(f"kv:call:{dead_call}") == 0
                assert await peek.exists(f"kv:call:{live_call}") == 1
                assert (await one.post(f"/v1/calls/{live_call}/turns", json={"digits": "1"})).status == 200

"""One instance on a real Redis: the call's state there only while the call lasts, a handful of commands
per call, and an outage that refuses new calls (503, readiness says why) while live streaming calls go on."""

from __future__ import annotations

import json

import aiohttp
from doors.conftest import keys, running, start_call

from adapter.app_state import METRICS
from cluster.conftest import cluster_settings, wall_clock

TTL_S = 600


def commands(client) -> float:
    return client.server.app[METRICS].registry.get_sample_value("kore_voice_redis_commands_total")


async def test_a_calls_state_is_in_redis_while_it_lasts_with_its_ttl_and_costs_a_handful_of_commands(
        redis_db, peek, bot):
    settings = cluster_settings(redis_db, bot, KORE_VOICE_SESSION_TTL_S=str(TTL_S))
    async with running(settings, clock=wall_clock()) as client:
        before = commands(client)
        call_id = (await start_call(client))["id"]
        stored = json.loads(await peek.get(f"kv:call:{call_id}"))
        assert stored["state"]["call"]["user_id"] == call_id
        assert stored["state"]["phase"] == "listening"
        assert 0 < await peek.ttl(f"kv:call:{call_id}") <= TTL_S
        instance = stored["owner"]
        assert await peek.smembers(f"kv:owned:{instance}") == {call_id.encode()}
        assert (await keys(client, call_id, "1")).status == 200
        assert json.loads(await peek.get(f"kv:call:{call_id}"))["state"]["turns"] == stored["state"]["turns"] + 1
        assert (await client.delete(f"/v1/calls/{call_id}")).status == 204
        assert await peek.exists(f"kv:call:{call_id}") == 0
        assert await peek.smembers(f"kv:owned:{instance}") == set()
        # per turn: two writes (the bot's turn, then listening) and the REST door's read of the shared state;
        # a few to start and end the call
        assert commands(client) - before <= 20


async def until(ws, kind: str) -> dict:
    """The kiosk stream's next event of `kind` (prompts' audio frames passed over)."""
    while True:
        msg = await ws.receive(timeout=60)
        if msg.type == aiohttp.WSMsgType.TEXT and (event := json.loads(msg.data))["type"] == kind:
            return event
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg


async def test_redis_down_fails_readiness_and_new_calls_while_live_streaming_calls_go_on_then_recovers(
        redis_db, bot):
    async with running(cluster_settings(redis_db, bot), clock=wall_clock()) as client, \
            client.ws_connect("/v1/stream") as kiosk:
        await kiosk.send_json({"type": "start", "from": "+15551230000", "to": "+15559870000", "format": "l16"})
        await until(kiosk, "listening")
        assert (await client.get("/readyz")).status == 200
        await redis_db.stop()
        ready = await client.get("/readyz")
        assert ready.status == 503
        check = (await ready.json())["checks"]["shared_state"]
        assert not check["ok"] and f"Redis at 127.0.0.1:{redis_db.port}" in check["detail"]
        refused = await client.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000"})
        assert refused.status == 503
        body = await refused.text()
        assert body.count("\n") <= 1
        error = json.loads(body)["error"]
        assert "shared state" in error["message"] and "redis://" not in error["message"]
        await kiosk.send_json({"type": "dtmf", "digit": "1"})  # the live streaming call goes on
        assert (await until(kiosk, "bot"))["texts"][0] == "Your checking account balance is $2,450.18."
        await redis_db.start()
        assert (await client.get("/readyz")).status == 200
        assert (await start_call(client))["id"]

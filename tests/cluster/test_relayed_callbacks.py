"""Async Kore.ai callbacks (KORE_MODE=async) on two instances of one real redis-server: a callback for a
streaming call that lands on the instance not holding its socket reaches the call, in `createdOn` order,
each message once, however Kore spreads, repeats and reorders its POSTs; while Redis is down it is
refused with 503, and relayed again once Redis is back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestClient
from conversation.manual_clock import ManualClock
from doors.conftest import running

from adapter.cluster.bus import RETRY_S, stream_key
from adapter.cluster.wiring import CLUSTER
from cluster.async_kore import CALLBACK_TOKEN, AsyncKore, async_kore, end_of_task, said
from cluster.conftest import cluster_settings, until, wall_clock
from cluster.redis_server import RedisServer

WINDOW_S = 0.15  # the reply router's reorder window (adapter/kore/callbacks.py), on the app's clock
CALLBACK = f"/kore/callback/{CALLBACK_TOKEN}"


@dataclass
class Pair:
    """A kiosk call streaming on `home`; `other` is the instance its callbacks should not have reached."""

    clock: ManualClock
    home: TestClient
    other: TestClient
    kiosk: aiohttp.ClientWebSocketResponse
    call: str
    kore: AsyncKore
    peek: Any

    async def deliver(self, *posts: tuple[TestClient, dict[str, Any]]) -> None:
        """Kore's POSTs, one after another, each to the instance given; then until `home` has handled
        those relayed to it (it deletes each from its bus once handled)."""
        for instance, body in posts:
            resp = await instance.post(CALLBACK, json=body)
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["status"] == ("ok" if instance is self.home else "forwarded")
        bus = stream_key(self.home.server.app[CLUSTER].instance)
        await until(lambda: _empty(self.peek, bus))

    async def asked(self, count: int) -> None:
        """Until the call has sent the bot `count` messages."""
        await until(lambda: len(self.kore.texts_from(self.call)) == count)

    async def press(self, keys: str) -> None:
        for key in keys:
            await self.kiosk.send_json({"type": "dtmf", "digit": key})

    async def said(self) -> list[list[str]]:
        """What the bot said to the caller (each reply's texts) until the call listens again."""
        return [e["texts"] for e in await events_until(self.kiosk, "listening") if e["type"] == "bot"]


@pytest_asyncio.fixture
async def pair(redis_db: RedisServer, peek: Any) -> AsyncIterator[Pair]:
    clock = wall_clock()
    async with async_kore() as kore:
        settings = cluster_settings(redis_db, kore, **kore.env())
        async with running(settings, clock=clock) as home, running(settings, clock=clock) as other, \
                home.ws_connect("/v1/stream") as kiosk:
            await kiosk.send_json({"type": "start", "from": "+15551230000", "to": "+15559870000", "format": "l16"})
            call = (await events_until(kiosk, "started"))[-1]["id"]
            pair = Pair(clock, home, other, kiosk, call, kore, peek)
            await pair.asked(1)  # ON_CONNECT
            yield pair


async def events_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """The kiosk stream's JSON events up to the first of `kind` (prompts' audio passed over)."""
    seen = []
    while True:
        msg = await ws.receive(timeout=60)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
        if msg.type == aiohttp.WSMsgType.TEXT:
            seen.append(json.loads(msg.data))
            if seen[-1]["type"] == kind:
                return seen


async def _empty(peek: Any, key: str) -> bool:
    return await peek.xlen(key) == 0


async def test_callbacks_landing_on_the_wrong_instance_reach_the_streaming_call_in_order_once(pair):
    home, other, call = pair.home, pair.other, pair.call
    welcome = said(call, 1, "Welcome to Demo Bank."), said(call, 2, "Say balance or agent.")
    await pair.deliver((other, welcome[1]), (other, welcome[0]), (home, welcome[0]), (other, welcome[1]))
    pair.clock.advance(WINDOW_S)
    assert await pair.said() == [["Welcome to Demo Bank.", "Say balance or agent."]]

    await pair.press("1#")
    await pair.asked(2)
    balance = said(call, 3, "Your balance is $2,450.18."), said(call, 4, "Anything else?"), end_of_task(call)
    await pair.deliver((home, balance[2]), (other, balance[1]), (other, welcome[1]), (other, balance[0]),
                       (home, balance[1]), (other, balance[2]))
    pair.clock.advance(WINDOW_S)
    assert await pair.said() == [["Your balance is $2,450.18.", "Anything else?"]]

    await pair.press("2#")
    await pair.asked(3)
    await pair.deliver((other, balance[0]), (other, said(call, 5, "Goodbye.")))
    pair.clock.advance(WINDOW_S)
    assert await pair.said() == [["Goodbye."]]
    assert pair.kore.texts_from(call) == ["ON_CONNECT", "1", "2"]


async def test_while_redis_is_down_a_callback_for_another_instances_call_is_refused_then_relayed(pair, redis_db):
    welcome = said(pair.call, 1, "Welcome to Demo Bank.")
    await redis_db.stop()
    await until(lambda: pair.home.server.app[CLUSTER].link.problem is not None)  # its bus read failed
    refused = await pair.other.post(CALLBACK, json=welcome)
    assert refused.status == 503
    body = await refused.text()
    assert body.count("\n") <= 1
    error = json.loads(body)["error"]
    assert error["code"] == "shared_state_unavailable" and "redis://" not in error["message"]

    await redis_db.start()
    pair.clock.advance(RETRY_S)  # the home instance reads its bus again
    await pair.deliver((pair.other, welcome))
    pair.clock.advance(WINDOW_S)
    assert await pair.said() == [["Welcome to Demo Bank."]]

"""A Vonage socket that says nothing is closed on the app's clock (moved by hand here): without
`websocket:connected` after HANDSHAKE_TIMEOUT_S, and silent for IDLE_TIMEOUT_S once its call runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import WSCloseCode
from aiohttp.test_utils import TestClient
from conversation.manual_clock import ManualClock

from adapter.app_state import CALLS
from adapter.doors.vonage.socket import HANDSHAKE_TIMEOUT_S, IDLE_TIMEOUT_S

from ..conftest import running
from .conftest import ncco_endpoint, new_uuid, vonage_settings

module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(bot, clock) -> AsyncIterator[TestClient]:
    async with running(vonage_settings(**bot.env()), clock=clock) as client:
        yield client


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def close_of(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """Read (and drop our audio) until the server closes the socket."""
    async with asyncio.timeout(10):
        while (msg := await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            pass
    return ws.close_code, msg.extra or ""


@module_loop
async def test_a_socket_without_connected_is_closed_after_the_handshake_timeout(service, clock):
    endpoint = await ncco_endpoint(service, new_uuid(), iat=clock.time())
    timers = clock.pending
    async with service.session.ws_connect(endpoint["uri"]) as ws:
        await until(lambda: clock.pending > timers)  # the handler is waiting for `connected`
        clock.advance(HANDSHAKE_TIMEOUT_S - 0.5)
        with pytest.raises(TimeoutError):
            await ws.receive(0.2)
        clock.advance(1.0)
        code, reason = await close_of(ws)
    assert code == WSCloseCode.POLICY_VIOLATION and "no websocket:connected" in reason


@module_loop
async def test_a_silent_socket_is_dead_and_its_call_is_hung_up(service, bot, clock):
    endpoint = await ncco_endpoint(service, new_uuid(), iat=clock.time())
    uid = "vonage-" + endpoint["headers"]["uuid"]
    async with service.session.ws_connect(endpoint["uri"]) as ws:
        await ws.send_str(json.dumps({"event": "websocket:connected", "content-type": endpoint["content-type"],
                                      **endpoint["headers"]}))
        await until(lambda: service.app[CALLS].get(uid) is not None)
        clock.advance(IDLE_TIMEOUT_S + 1)
        code, reason = await close_of(ws)
    assert code == WSCloseCode.POLICY_VIOLATION and f"no message for {IDLE_TIMEOUT_S:g} s" in reason
    await until(lambda: bot.closures(uid) == 1)

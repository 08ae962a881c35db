"""Stopping `kore-voice serve` with a call in progress (issue 17): readiness fails first, new calls are
refused with one 503 line, the live call goes on, and is closed properly (its SESSION_CLOSURE, its socket)
when it ends, when KORE_VOICE_DRAIN_S is over, or at a second signal; the process exits 0."""

from __future__ import annotations

import signal
import time

import aiohttp
import pytest
from simulated_bot import SimulatedBot

from ops.live import draining, exit_status, instances, kiosk_call, local

BALANCE = "Your checking account balance is $2,450.18."


async def refused_call(http: aiohttp.ClientSession, base: str) -> dict:
    async with http.post(f"{base}/v1/calls", json={"from": "+15551230000", "to": "+15559870000"}) as answer:
        body = await answer.read()
        assert answer.status == 503 and body.count(b"\n") <= 1, body
        return (await answer.json())["error"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_drains_and_a_second_closes_the_live_call_at_once(bot: SimulatedBot, sig: signal.Signals):
    async with instances(1, KORE_VOICE_DRAIN_S="600", **bot.env()) as (service,), aiohttp.ClientSession() as http:
        call = await kiosk_call(http, local(service))
        service.process.send_signal(sig)
        ready = await draining(http, service)
        assert ready["ready"] is False and "draining" in ready["checks"]["calls"]["detail"]
        assert (await refused_call(http, local(service)))["code"] == "busy"
        assert BALANCE in await call.press("1")  # the live call goes on
        assert bot.closures(call.id) == 0
        service.process.send_signal(sig)
        assert (await call.closed_by_server()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert await exit_status(service) == 0
    assert bot.closures(call.id) == 1
    assert len(bot.bodies()) == len(bot.bodies(call.id))  # the refused call never reached the bot


async def test_the_live_call_is_closed_when_the_drain_time_is_over(bot: SimulatedBot):
    async with instances(1, KORE_VOICE_DRAIN_S="2", **bot.env()) as (service,), aiohttp.ClientSession() as http:
        call = await kiosk_call(http, local(service))
        service.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        await draining(http, service)
        assert (await call.closed_by_server()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert time.monotonic() - signalled >= 2  # the call was let go on for KORE_VOICE_DRAIN_S
        assert await exit_status(service) == 0
    assert bot.closures(call.id) == 1


async def test_the_process_exits_as_soon_as_its_last_call_ends(bot: SimulatedBot):
    async with instances(1, KORE_VOICE_DRAIN_S="600", **bot.env()) as (service,), aiohttp.ClientSession() as http:
        call = await kiosk_call(http, local(service))
        service.process.send_signal(signal.SIGTERM)
        await draining(http, service)
        await call.ws.send_json({"type": "stop"})  # the caller hangs up
        assert await exit_status(service) == 0
    assert bot.closures(call.id) == 1

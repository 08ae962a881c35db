"""deploy/nginx/kore-voice.conf, run by a real nginx in front of two real `kore-voice serve` processes
(issue 17): HTTP requests alternate between the instances, a kiosk call streams through the WebSocket
upgrade, and a SIGTERM'd instance drains behind it while new calls go to the other."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
from serve_process import Service
from simulated_bot import SimulatedBot

from ops.live import draining, exit_status, instances, kiosk_call, local, readiness
from ops.nginx import balancer, needs_nginx

pytestmark = needs_nginx

BALANCE = "Your checking account balance is $2,450.18."
NEW_CALL = {"from": "+15551230000", "to": "+15559870000"}


async def new_call(http: aiohttp.ClientSession, base: str) -> str:
    async with http.post(f"{base}/v1/calls", json=NEW_CALL) as answer:
        assert answer.status == 201, await answer.text()
        return (await answer.json())["id"]


async def owner(http: aiohttp.ClientSession, call_id: str, services: list[Service]) -> int:
    """Which of `services` holds the REST call (only its owner has the welcome's audio)."""
    statuses = []
    for service in services:
        async with http.get(f"{local(service)}/v1/calls/{call_id}/audio/0") as answer:
            statuses.append(answer.status)
    assert sorted(statuses) == [200, 404], statuses
    return statuses.index(200)


async def test_http_requests_alternate_between_the_instances(bot: SimulatedBot, tmp_path: Path):
    async with (instances(2, **bot.env()) as services, balancer(tmp_path / "nginx", [s.port for s in services]) as url,
                aiohttp.ClientSession() as http):
        calls = [await new_call(http, url) for _ in range(4)]
        owners = [await owner(http, call_id, services) for call_id in calls]
    assert owners in ([0, 1, 0, 1], [1, 0, 1, 0])


async def test_a_kiosk_call_streams_through_the_websocket_upgrade(bot: SimulatedBot, tmp_path: Path):
    async with (instances(2, **bot.env()) as services, balancer(tmp_path / "nginx", [s.port for s in services]) as url,
                aiohttp.ClientSession() as http):
        call = await kiosk_call(http, url)
        assert call.welcome == ["Welcome to Demo Bank.", "How can I help you today?"]
        assert BALANCE in await call.press("1")
        await call.ws.send_json({"type": "stop"})
        await call.closed_by_server()
    assert bot.texts_from(call.id) == ["balance"] and bot.closures(call.id) == 1


async def test_a_sigterm_drains_one_instance_while_new_calls_go_to_the_other(bot: SimulatedBot, tmp_path: Path):
    async with (instances(2, KORE_VOICE_DRAIN_S="600", **bot.env()) as services,
                balancer(tmp_path / "nginx", [s.port for s in services]) as url, aiohttp.ClientSession() as http):
        call = await kiosk_call(http, url)
        lives = [(await readiness(http, s))[1]["checks"]["calls"]["detail"] for s in services]
        stopping, staying = (services[0], services[1]) if "(1 live)" in lives[0] else (services[1], services[0])
        stopping.process.send_signal(signal.SIGTERM)
        await draining(http, stopping)
        calls = [await new_call(http, url) for _ in range(3)]  # nginx retries the refused one on the other
        assert [await owner(http, call_id, [stopping, staying]) for call_id in calls] == [1, 1, 1]
        assert BALANCE in await call.press("1")  # the live call goes on through nginx
        await call.ws.send_json({"type": "stop"})
        await call.closed_by_server()
        assert await exit_status(stopping) == 0
        assert (await readiness(http, staying))[0] == 200
        for call_id in calls:  # so that the staying instance, drained in turn, stops at once
            async with http.delete(f"{local(staying)}/v1/calls/{call_id}") as answer:
                assert answer.status == 204
    assert bot.closures(call.id) == 1

"""The SIP door's TCP side under pressure: connections over the cap are closed at once, idle ones after
TCP_IDLE_S on the app's clock unless a live call came over them; the others keep being served."""

from __future__ import annotations

import asyncio

from conversation.manual_clock import ManualClock

from adapter.doors.sip import listener
from tests.doors.sip.conftest import TcpPeer, request, sdp_offer, sip_service, tcp_peer


async def options(peer: TcpPeer, call_id: str) -> int:
    peer.send(request("OPTIONS", peer.port, call_id=call_id, branch=f"z9hG4bK-{call_id}", transport="TCP"))
    return (await peer.final()).status


async def closed(peer: TcpPeer) -> bool:
    return await asyncio.wait_for(peer.reader.read(), 5) == b""


async def test_connections_over_the_cap_are_closed_and_the_others_served(monkeypatch, caplog):
    monkeypatch.setattr(listener, "MAX_TCP_CONNECTIONS", 2)
    async with sip_service() as sip, tcp_peer(sip.port) as first, tcp_peer(sip.port) as second:
        assert await options(first, "a") == 200 and await options(second, "b") == 200
        async with tcp_peer(sip.port) as third:
            assert await closed(third)
        assert "refused: 2 connections open" in caplog.text
        assert await options(first, "c") == 200 and await options(second, "d") == 200


async def test_an_idle_connection_is_closed_unless_a_call_came_over_it(monkeypatch):
    monkeypatch.setattr(listener, "TCP_IDLE_S", 10.0)  # before the RTP inactivity (30 s) ends the call
    clock = ManualClock()
    async with sip_service(clock=clock) as sip, tcp_peer(sip.port) as idle, tcp_peer(sip.port) as calling:
        assert await options(idle, "idle") == 200
        calling.send(request("INVITE", calling.port, sdp_offer(), call_id="live", transport="TCP"))
        assert (await calling.final()).status == 200
        clock.advance(9.0)
        assert await options(idle, "again") == 200  # a message restarts its time
        clock.advance(9.0)
        assert await options(calling, "still") == 200
        clock.advance(10.0)
        assert await closed(idle)
        assert await options(calling, "held") == 200  # the live call keeps its connection

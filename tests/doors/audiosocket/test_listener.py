"""The AudioSocket listener on its own: who may connect (KORE_VOICE_AUDIOSOCKET_ALLOW), and a peer
that stops sending is closed after STALL_S on the app's clock (a manual one here: no waiting)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conversation.manual_clock import ManualClock
from serve_process import service_env

from adapter.doors.audiosocket.calls import BOOK
from adapter.doors.audiosocket.door import SERVER, STALL_S
from adapter.testing.audiosocket_peer import AudioSocketPeer

from ..conftest import door_settings, running


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not check():
            await asyncio.sleep(0.01)


async def watched(clock: ManualClock, count: int) -> None:
    """Until `count` watchdogs wait on `clock` (timers due exactly STALL_S from now: nothing else is)."""
    due = clock.now() + STALL_S
    await until(lambda: sum(1 for at, _, timer, _ in clock._timers if at == due and not timer.cancelled) == count)


def listener(client) -> tuple[str, int]:
    host, port = client.app[SERVER].sockets[0].getsockname()[:2]
    return host, port


@pytest.mark.parametrize(("allow", "allowed"), [("10.0.0.0/8, 192.168.1.7", False), ("10.0.0.0/8 127.0.0.0/8", True)])
async def test_only_peers_on_the_allow_list_get_a_call(allow, allowed, caplog):
    settings = door_settings(KORE_VOICE_AUDIOSOCKET_PORT="0", KORE_VOICE_AUDIOSOCKET_ALLOW=allow)
    with caplog.at_level(logging.WARNING, logger="adapter.doors.audiosocket.door"):
        async with running(settings) as client, AudioSocketPeer(*listener(client)) as peer:
            if allowed:
                await peer.until(lambda p: len(p.audio()) > 0, 20)
            else:
                await peer.until(lambda p: p.closed, 10)
    refused = "refused a connection from 127.0.0.1: not in KORE_VOICE_AUDIOSOCKET_ALLOW"
    assert (refused in caplog.text) is not allowed
    if not allowed:
        assert peer.timeline == []  # closed at once: no call, not even a hang-up frame


async def test_no_listener_without_a_port():
    async with running(door_settings()) as client:
        assert SERVER not in client.app


async def test_a_peer_silent_for_the_stall_limit_is_closed(caplog):
    clock = ManualClock()
    settings = door_settings(KORE_VOICE_AUDIOSOCKET_PORT="0")
    with caplog.at_level(logging.WARNING, logger="adapter.doors.audiosocket.door"):
        async with running(settings, clock=clock) as client:
            address = listener(client)
            async with AudioSocketPeer(*address, send_uuid=False, talk=False) as mute, \
                    AudioSocketPeer(*address, talk=False) as stalled:
                await watched(clock, 2)  # both accepted; each has its watchdog
                await until(lambda: client.app[BOOK].describe(stalled.call) is not None)  # the UUID arrived
                clock.advance(STALL_S - 0.1)
                for _ in range(20):  # what a stall would set off takes a few turns of the loop
                    await asyncio.sleep(0)
                assert not (mute.closed or stalled.closed)
                clock.advance(0.2)
                await mute.until(lambda p: p.closed, 10)
                await stalled.until(lambda p: p.closed, 10)
    closed = [r.getMessage() for r in caplog.records if f"closing: no frame for {STALL_S:g} s" in r.getMessage()]
    assert len(closed) == 2, caplog.text
    assert any(str(stalled.call) in line for line in closed)
    assert mute.hung_up and stalled.hung_up


async def test_the_channel_drivers_slin16_is_taken_when_enabled():
    settings = door_settings(KORE_VOICE_AUDIOSOCKET_PORT="0", KORE_VOICE_AUDIOSOCKET_RATE="16000")
    async with running(settings) as client, AudioSocketPeer(*listener(client), rate=16000) as peer:
        await peer.until(lambda p: len(p.audio()) > 5, 20)
        await peer.hang_up()
        await peer.until(lambda p: p.closed, 10)
    assert peer.problems == [] and {(a.kind, len(a.audio)) for a in peer.audio()} == {(0x12, 640)}


async def test_serve_starts_the_listener_on_the_port_given(unused_tcp_port):
    """`kore-voice serve --audiosocket-port N`: Asterisk's calls are answered on N."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("kore-voice")), "serve", "--port", "0",
        "--audiosocket-port", str(unused_tcp_port), env=service_env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        assert "serving on" in (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        async with AudioSocketPeer("127.0.0.1", unused_tcp_port) as peer:
            await peer.until(lambda p: len(p.audio()) > 0, 30)  # the welcome
            await peer.hang_up()
            await peer.until(lambda p: p.closed, 10)
        assert peer.problems == []
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)

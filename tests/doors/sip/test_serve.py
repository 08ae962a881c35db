"""`kore-voice serve` starts the SIP door when KORE_VOICE_SIP_PORT or `--sip-port` is set, and says where."""

from __future__ import annotations

import re

import pytest
from serve_process import serving

from tests.doors.sip.conftest import request, tcp_peer, udp_peer

SIP_DOOR = re.compile(r"SIP door on udp\+tcp 127\.0\.0\.1:(\d+)")


@pytest.mark.parametrize(("args", "env"), [(("--sip-port", "0"), {}), ((), {"KORE_VOICE_SIP_PORT": "0"})])
async def test_serve_starts_the_sip_door_on_udp_and_tcp(args: tuple[str, ...], env: dict[str, str]) -> None:
    async with serving(args=args, KORE_VOICE_SIP_HOST="127.0.0.1", **env) as service:
        found = SIP_DOOR.search(service.banner)
        assert found, service.banner
        port = int(found[1])
        async with udp_peer() as peer:
            peer.send(request("OPTIONS", peer.port), port)
            assert (await peer.final()).status == 200
        async with tcp_peer(port) as peer:
            peer.send(request("OPTIONS", peer.port, call_id="c2", branch="z9hG4bK-2", transport="TCP"))
            assert (await peer.final()).status == 200


async def test_serve_without_a_sip_port_has_no_sip_door() -> None:
    async with serving() as service:
        assert "SIP" not in service.banner

"""A flood of INVITEs from sipp at the call limit: each answered 503 with Retry-After, the log kept to
a few lines, and the call already up unaffected."""

from __future__ import annotations

import logging
from pathlib import Path

from adapter.doors.sip.uas import WARNINGS_PER_MINUTE
from tests.doors.sip.conftest import SCENARIOS, request, sdp_offer, sip_service, sipp, udp_peer

FLOOD = 200  # INVITEs, at 400 a second


async def test_an_invite_flood_gets_503s_and_the_live_call_goes_on(tmp_path: Path, caplog):
    caplog.set_level(logging.WARNING, "adapter.doors.sip")
    async with sip_service(KORE_VOICE_MAX_CALLS="1") as sip, udp_peer() as peer:
        peer.send(request("INVITE", peer.port, sdp_offer(), call_id="live"), sip.port)
        ok = await peer.final()
        assert ok.status == 200
        tag = (ok.get("To") or "").split("tag=")[1]
        peer.send(request("ACK", peer.port, call_id="live", branch="z9hG4bK-ack", to_tag=tag), sip.port)

        result = await sipp(sip.port, "-sf", str(SCENARIOS / "flood.xml"), "-mi", "127.0.0.1", "-r", "400",
                            "-m", str(FLOOD), cwd=tmp_path)
        assert result.returncode == 0, result.stderr.decode()[-2000:]  # every INVITE answered 503

        peer.send(request("OPTIONS", peer.port, call_id="after", branch="z9hG4bK-o"), sip.port)
        assert (await peer.final()).status == 200
        peer.send(request("BYE", peer.port, call_id="live", branch="z9hG4bK-bye", to_tag=tag, cseq=2), sip.port)
        assert (await peer.final()).status == 200
    texts = [r.get("message", {}).get("val") for r in sip.requests]
    assert texts.count("ON_CONNECT") == 1  # the flood opened no Kore session
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert 0 < len(refusals) <= WARNINGS_PER_MINUTE

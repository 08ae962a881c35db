"""The SIP door against a raw UDP peer: the answers RFC 3261 asks for, and bad input refused precisely
while the door keeps serving."""

from __future__ import annotations

import asyncio

import pytest

from adapter.doors.sip.message import MAX_MESSAGE_BYTES
from tests.doors.sip.conftest import request, sdp_offer, sip_service, udp_peer


async def test_options_is_answered_200_with_what_we_allow() -> None:
    async with sip_service() as sip, udp_peer() as peer:
        peer.send(request("OPTIONS", peer.port), sip.port)
        answer = await peer.final()
        assert answer.status == 200
        assert "INVITE" in (answer.get("Allow") or "") and "BYE" in (answer.get("Allow") or "")


async def test_bad_input_is_refused_or_dropped_and_the_door_goes_on() -> None:
    async with sip_service() as sip, udp_peer() as peer:
        peer.send(b"\x16\x03\x01 garbage", sip.port)  # dropped: nothing to answer to
        peer.send(b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n" + b"x" * (MAX_MESSAGE_BYTES * 3), sip.port)
        no_call_id = request("OPTIONS", peer.port).replace(b"Call-ID: c1\r\n", b"")
        peer.send(no_call_id, sip.port)
        answer = await peer.final()
        assert (answer.status, answer.reason) == (400, "Bad Request (missing Call-ID)")
        peer.send(request("SUBSCRIBE", peer.port, call_id="c2"), sip.port)
        assert (await peer.final()).status == 501
        peer.send(request("BYE", peer.port, call_id="nobody", to_tag="x"), sip.port)
        assert (await peer.final()).status == 481
        peer.send(request("OPTIONS", peer.port, call_id="c3"), sip.port)
        assert (await peer.final()).status == 200
        assert peer.received.empty()


@pytest.mark.parametrize(("body", "status"), [
    (sdp_offer("9 18"), 488),  # no G.711
    ("v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5000 RTP/AVP 31\r\n", 488),  # no audio
    ("", 488),  # no offer
])
async def test_offers_we_cannot_answer_get_488_and_leave_no_session(body: str, status: int) -> None:
    async with sip_service() as sip, udp_peer() as peer:
        peer.send(request("INVITE", peer.port, body), sip.port)
        answer = await peer.final()
        assert answer.status == status
        peer.send(request("INVITE", peer.port, body), sip.port)  # a retransmission: the same answer again
        assert (await peer.final()).encode() == answer.encode()
        assert sip.requests == []  # no Kore session was opened


async def test_peers_off_the_allow_list_get_403() -> None:
    async with sip_service(allow="10.0.0.0/8") as sip, udp_peer() as peer:
        peer.send(request("INVITE", peer.port, sdp_offer()), sip.port)
        assert (await peer.final()).status == 403
        assert sip.requests == []


async def test_the_call_limit_answers_503_with_retry_after() -> None:
    async with sip_service(KORE_VOICE_MAX_CALLS="1") as sip, udp_peer() as peer:
        peer.send(request("INVITE", peer.port, sdp_offer(), call_id="first"), sip.port)
        assert (await peer.final()).status == 200
        peer.send(request("INVITE", peer.port, sdp_offer(), call_id="second", branch="z9hG4bK-2"), sip.port)
        answer = await peer.final()
        assert (answer.call_id, answer.status, answer.get("Retry-After")) == ("second", 503, "30")


async def test_our_200_is_sent_again_until_the_ack() -> None:
    async with sip_service() as sip, udp_peer() as peer:
        peer.send(request("INVITE", peer.port, sdp_offer()), sip.port)
        ok = await peer.final()
        assert ok.status == 200
        again = await peer.final(timeout=2.0)  # T1 = 0.5 s later, without our ACK
        assert again.encode() == ok.encode()
        tag = (ok.get("To") or "").split("tag=")[1]
        peer.send(request("ACK", peer.port, branch="z9hG4bK-ack", to_tag=tag), sip.port)
        await asyncio.sleep(0.2)  # an answer in flight when the ACK went
        while not peer.received.empty():
            peer.received.get_nowait()
        with pytest.raises(TimeoutError):
            await peer.response(timeout=1.6)  # past the next two retransmission times

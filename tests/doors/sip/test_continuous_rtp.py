"""Our RTP never stops, as a real user agent's does (a PBX's media timeout, NAT pinholes): from the
200 OK to the end a packet in every 20 ms slot, the prompts and G.711 silence between them, in one run
of sequence numbers and timestamps, the marker on each prompt's first packet, and a barge-in turning
the stream to silence at the very next packet. The whole service (stub bot) on a manual clock, and a
real UDP peer for SIP and for RTP."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import cast

from conversation.manual_clock import ManualClock

from adapter.doors.pacer import FRAME_S
from adapter.doors.sip.call import SipCall
from adapter.doors.sip.message import Response
from adapter.doors.sip.rtp import RtpPacket, RtpSession
from tests.doors.sip.conftest import RtpPeer, UdpPeer, request, sdp_offer, sip_service, udp_peer

SILENCE = b"\xff" * 160  # 20 ms of μ-law silence


class Line:
    """What the peer got, a slot of the manual clock at a time: each packet with the clock's time."""

    def __init__(self, clock: ManualClock, media: RtpPeer, call: SipCall) -> None:
        self.clock, self.media, self.call = clock, media, call
        self.start = clock.now()
        self.got: list[tuple[float, RtpPacket]] = []

    @property
    def sent(self) -> int:
        """Packets the call's RTP session has sent so far."""
        assert self.call.rtp is not None
        return cast(RtpSession, self.call.rtp).counts["sent"]

    async def slots(self, count: int) -> None:
        """Let `count` slots pass; after each, take what the door sent in it (a timer an ulp past its
        slot's end fires with the next slot)."""
        for _ in range(count):
            self.clock.advance(FRAME_S)
            await asyncio.sleep(0)  # the pacer's turn
            while len(self.got) < self.sent:
                self.got.append((self.clock.now(), await self.media.packet()))  # loopback delivery

    @property
    def packets(self) -> list[RtpPacket]:
        return [packet for _, packet in self.got]


async def until(condition: Callable[[], bool]) -> None:
    """Wait (for loopback delivery and the event loop, not for behaviour: the clock stands still)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


def to_tag(ok: Response) -> str:
    return (ok.get("To") or "").split("tag=")[1]


async def press(peer: UdpPeer, port: int, ok: Response, key: str, cseq: int) -> None:
    peer.send(request("INFO", peer.port, f"Signal={key}\r\nDuration=160\r\n", call_id=ok.call_id,
                      branch=f"z9hG4bK-info-{cseq}", to_tag=to_tag(ok), cseq=cseq,
                      content_type="application/dtmf-relay"), port)
    assert (await peer.final()).status == 200


async def test_our_rtp_runs_all_call_long_and_a_barge_in_turns_it_to_silence_at_once() -> None:
    clock = ManualClock()
    async with sip_service(clock=clock) as sip, udp_peer() as peer:
        media = await RtpPeer.open()
        peer.send(request("INVITE", peer.port, sdp_offer(port=media.address[1]), call_id="steady"), sip.port)
        ok = await peer.final()  # at the bot's first answer, "Stub bot here."
        assert ok.status == 200
        peer.send(request("ACK", peer.port, call_id="steady", branch="z9hG4bK-ack", to_tag=to_tag(ok)), sip.port)
        [call] = sip.agent.calls.values()
        await until(lambda: call.playout.queued_s > 0)  # its audio, once synthesized
        line = Line(clock, media, call)
        await line.slots(10)  # 200 ms of the welcome
        await press(peer, sip.port, ok, "5", 2)  # the caller barges in with a key
        await until(lambda: call.playout.queued_s == 0)  # the conversation's Clear reached the door
        cleared = line.sent
        await line.slots(5)
        await press(peer, sip.port, ok, "#", 3)
        await until(lambda: call.playout.queued_s > 0)  # the bot's "You pressed 5." is queued
        reply = line.sent
        while call.playout.queued_s:  # until the reply's audio is all sent
            await line.slots(1)
        await line.slots(10)
        peer.send(request("BYE", peer.port, call_id="steady", branch="z9hG4bK-bye", to_tag=to_tag(ok), cseq=4),
                  sip.port)
        assert (await peer.final()).status == 200

    packets = line.packets
    assert len(packets) >= round((line.clock.now() - line.start) / FRAME_S)  # a packet a slot, give or take one
    first = packets[0]
    assert [(p.seq - first.seq) % 2**16 for p in packets] == list(range(len(packets)))
    assert [(p.timestamp - first.timestamp) % 2**32 for p in packets] == [160 * k for k in range(len(packets))]
    assert len({p.ssrc for p in packets}) == 1
    times = [at for at, _ in line.got]
    assert max(later - earlier for earlier, later in itertools.pairwise(times)) <= 2 * FRAME_S + 1e-9

    welcome = next(k for k, p in enumerate(packets) if p.marker)
    assert [k for k, p in enumerate(packets) if p.marker] == [welcome, reply]  # each prompt's first packet
    assert all(p.payload == SILENCE for p in packets[:welcome])  # silence from the answer until the welcome
    assert any(p.payload != SILENCE for p in packets[welcome:cleared])
    assert all(p.payload == SILENCE for p in packets[cleared:reply])  # from the packet right after the clear
    assert any(p.payload != SILENCE for p in packets[reply:])
    assert all(p.payload == SILENCE for p in packets[-10:])  # silence again after the reply

"""One call's RTP session over real UDP sockets on loopback, on a manual clock: what it sends, what
it hears (jitter buffer, keys, latching), bad packets, its ports and its end."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conversation.manual_clock import ManualClock

from adapter.audio.g711 import alaw_to_pcm16, ulaw_to_pcm16
from adapter.doors.sip.media import MediaHandlers
from adapter.doors.sip.rtp import RtpPacket, RtpPorts, RtpPortsExhausted, RtpSession, build_rtp, parse_rtp
from tests.doors.sip.conftest import RtpPeer

SIPP_PCAPS = Path("/usr/share/sip-tester")
SILENCE = bytes(320)


class Heard:
    """What the session handed the call."""

    def __init__(self) -> None:
        self.audio: list[bytes] = []
        self.keys: list[str] = []
        self.inactive = 0
        self.handlers = MediaHandlers(audio=self.audio.append, key=self.keys.append, inactive=self._inactive)

    def _inactive(self) -> None:
        self.inactive += 1


def free_even_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            if sock.getsockname()[1] % 2 == 0:
                return sock.getsockname()[1]


async def until(condition: Callable[[], bool]) -> None:
    """Wait (for loopback delivery, not for behaviour) until `condition` holds."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.001)


def rtp(seq: int, payload: bytes = b"\xff" * 160, pt: int = 0, timestamp: int | None = None,
        ssrc: int = 0x1234, marker: bool = False) -> bytes:
    return build_rtp(RtpPacket(pt, seq & 0xFFFF, (seq * 160 if timestamp is None else timestamp) & 0xFFFFFFFF,
                               ssrc, payload, marker))


def ulaw_frame(code: int) -> bytes:
    return bytes([code]) * 160


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
async def peer() -> RtpPeer:
    return await RtpPeer.open()


@pytest.fixture
async def session(peer: RtpPeer, heard: Heard, clock: ManualClock) -> AsyncIterator[RtpSession]:
    rtp_session = RtpSession(RtpPorts(range(40000, 41000), "127.0.0.1"), peer.address, "PCMU", 101,
                             heard.handlers, clock=clock)
    await rtp_session.start()
    yield rtp_session
    rtp_session.close()


async def deliver(peer: RtpPeer, session: RtpSession, *packets: bytes) -> None:
    """Send packets and wait until the session has taken them (good or bad)."""
    for data in packets:
        before = sum(session.counts.values())
        peer.send(session, data)
        await until(lambda before=before: sum(session.counts.values()) > before)


def code(seq: int) -> int:
    """A μ-law code that tells the frame of `seq` from silence (0x7F and 0xFF are both 0)."""
    return seq % 120 + 1


async def timeline(peer: RtpPeer, session: RtpSession, clock: ManualClock, steps: str) -> list[str]:
    """Send μ-law frames by sequence number ("7": seq 7) and tick ("t", 20 ms); the frames the call
    got, by sequence number, "-" for silence."""
    names = {ulaw_to_pcm16(ulaw_frame(code(int(s)))): s for s in steps.split() if s != "t"} | {SILENCE: "-"}
    audio = session._handlers.audio  # the Heard of this test
    got: list[str] = []
    session._handlers = MediaHandlers(audio=lambda pcm: (got.append(names[pcm]), audio(pcm)),
                                      key=session._handlers.key, inactive=session._handlers.inactive)
    for step in steps.split():
        if step == "t":
            clock.advance(0.02)
        else:
            await deliver(peer, session, rtp(int(step), ulaw_frame(code(int(step)))))
    return got


# --- sending ------------------------------------------------------------------------------------


async def test_frames_go_out_as_rtp_with_a_fresh_ssrc_and_consecutive_numbers(
        session: RtpSession, peer: RtpPeer, clock: ManualClock, heard: Heard) -> None:
    for code in (1, 2, 3):
        session.send(ulaw_frame(code))
        clock.advance(0.02)
    first, second, third = [await peer.packet() for _ in range(3)]
    assert [p.payload for p in (first, second, third)] == [ulaw_frame(c) for c in (1, 2, 3)]
    assert {p.payload_type for p in (first, second, third)} == {0}
    assert [p.marker for p in (first, second, third)] == [True, False, False]
    assert (second.seq - first.seq) % 65536 == 1 and (third.seq - first.seq) % 65536 == 2
    assert (second.timestamp - first.timestamp) % 2**32 == 160 and (third.timestamp - first.timestamp) % 2**32 == 320
    assert first.ssrc == second.ssrc == third.ssrc

    other = RtpSession(RtpPorts(range(40000, 41000), "127.0.0.1"), peer.address, "PCMA", None, heard.handlers,
                       clock=clock)
    await other.start()
    other.send(b"\xd5" * 160)
    alaw = await peer.packet()
    other.close()
    assert alaw.payload_type == 8 and alaw.marker
    assert alaw.ssrc != first.ssrc and (alaw.seq, alaw.timestamp) != (first.seq, first.timestamp)


async def test_speech_after_silence_has_the_marker_and_numbers_run_on_across_both(
        session: RtpSession, peer: RtpPeer, clock: ManualClock) -> None:
    for frame, speech in ((1, True), (0xFF, False), (0xFF, False), (2, True), (3, True), (0xFF, False), (4, True)):
        session.send(ulaw_frame(frame), speech)
        clock.advance(0.02)
    packets = [await peer.packet() for _ in range(7)]
    assert [p.marker for p in packets] == [True, False, False, True, False, False, True]
    assert [(p.seq - packets[0].seq) % 65536 for p in packets] == list(range(7))
    assert [(p.timestamp - packets[0].timestamp) % 2**32 for p in packets] == [160 * k for k in range(7)]


async def test_on_hold_to_0_0_0_0_nothing_is_sent_and_the_timestamp_counts_the_frames_all_the_same(
        session: RtpSession, peer: RtpPeer, clock: ManualClock) -> None:
    session.send(ulaw_frame(1), speech=False)
    sdp_address = peer.address
    session.retarget("0.0.0.0", 9)  # the caller holds the call
    for _ in range(50):  # a second of silence, none of it sent
        session.send(ulaw_frame(0xFF), speech=False)
    assert session.counts["sent"] == 1
    session.retarget(*sdp_address)  # and takes it back
    session.send(ulaw_frame(2))
    before, after = [await peer.packet() for _ in range(2)]
    assert (after.timestamp - before.timestamp) % 2**32 == 8000 + 160  # a second at 8 kHz, and a frame
    assert (after.seq - before.seq) % 65536 == 1 and after.marker


# --- latching -----------------------------------------------------------------------------------


async def test_we_send_to_the_sdp_address_then_to_where_the_peer_sends_from(
        peer: RtpPeer, heard: Heard, clock: ManualClock) -> None:
    behind_nat = await RtpPeer.open()  # the SDP named `peer`; the packets come from `behind_nat`
    session = RtpSession(RtpPorts(range(40000, 41000), "127.0.0.1"), peer.address, "PCMU", 101, heard.handlers,
                         clock=clock)
    await session.start()
    session.send(ulaw_frame(1))
    assert (await peer.packet()).payload == ulaw_frame(1)
    await deliver(behind_nat, session, rtp(1))
    session.send(ulaw_frame(2))
    assert (await behind_nat.packet()).payload == ulaw_frame(2)
    session.close()
    assert peer.got.empty()


async def test_before_latching_a_stranger_is_dropped_and_after_it_anyone_else_is(
        session: RtpSession, peer: RtpPeer, clock: ManualClock, heard: Heard) -> None:
    stranger = await RtpPeer.open("127.0.0.2")
    await deliver(stranger, session, rtp(1, ulaw_frame(9)))
    assert session.counts["foreign"] == 1 and session.counts["received"] == 0
    clock.advance(1.0)
    assert heard.audio == []  # nothing heard: no ticks started
    session.send(ulaw_frame(1))
    assert (await peer.packet()).payload == ulaw_frame(1)  # still the SDP address

    await deliver(peer, session, rtp(1))
    same_host_other_port = await RtpPeer.open()
    await deliver(same_host_other_port, session, rtp(2), rtp(3))
    await deliver(stranger, session, rtp(4))
    assert session.counts["foreign"] == 4 and session.counts["received"] == 1
    session.send(ulaw_frame(2))
    assert (await peer.packet()).payload == ulaw_frame(2)


async def test_retarget_sends_to_the_new_address_and_latches_afresh(
        session: RtpSession, peer: RtpPeer, clock: ManualClock) -> None:
    await deliver(peer, session, rtp(1))
    moved = await RtpPeer.open()
    session.retarget(*moved.address)
    session.send(ulaw_frame(1))
    assert (await moved.packet()).payload == ulaw_frame(1)
    await deliver(moved, session, rtp(2))
    assert session.counts["received"] == 2 and session.counts["foreign"] == 0


# --- receiving ----------------------------------------------------------------------------------


async def test_audio_comes_out_decoded_one_frame_per_tick(
        session: RtpSession, peer: RtpPeer, clock: ManualClock, heard: Heard) -> None:
    assert await timeline(peer, session, clock, "1 t 2 t 3 t t t") == ["-", "1", "2", "3", "-"]
    assert heard.audio[1] == ulaw_to_pcm16(ulaw_frame(code(1))) and len(heard.audio[1]) == 320


async def test_reordered_lost_and_repeated_packets(session: RtpSession, peer: RtpPeer, clock: ManualClock) -> None:
    got = await timeline(peer, session, clock, "1 t 3 t 2 t 4 t t 6 t 7 t 7 t 4 t")
    assert got == ["-", "1", "2", "3", "4", "-", "6", "7", "-"]
    assert (session.counts["lost"], session.counts["duplicate"], session.counts["late"]) == (1, 1, 1)


async def test_sequence_numbers_wrap_around(session: RtpSession, peer: RtpPeer, clock: ManualClock) -> None:
    got = await timeline(peer, session, clock, "65534 t 65535 t 0 t 1 t t")
    assert got == ["-", "65534", "65535", "0", "1"]


async def test_a_key_is_reported_once_across_the_repeated_end_packets(
        session: RtpSession, peer: RtpPeer, clock: ManualClock, heard: Heard) -> None:
    def event(seq: int, end: bool, timestamp: int = 16000) -> bytes:
        return rtp(seq, struct.pack("!BBH", 5, (0x80 if end else 0) | 10, 480), pt=101, timestamp=timestamp)

    await deliver(peer, session, event(10, False), event(11, False), event(12, True), event(12, True),
                  event(12, True))
    assert heard.keys == ["5"]
    await deliver(peer, session, event(13, True, 32000), event(14, True, 32000))
    assert heard.keys == ["5", "5"]
    await deliver(peer, session, rtp(15, struct.pack("!BBH", 16, 0x80, 480), pt=101))  # flash: not a key
    assert heard.keys == ["5", "5"] and session.counts["bad"] == 0


@pytest.mark.skipif(not (SIPP_PCAPS / "g711a.pcap").exists(), reason="sipp (apt sip-tester) is not installed")
async def test_sipp_captures_pcma_speech_and_a_key(peer: RtpPeer, heard: Heard, clock: ManualClock) -> None:
    session = RtpSession(RtpPorts(range(40000, 41000), "127.0.0.1"), peer.address, "PCMA", 101, heard.handlers,
                         clock=clock)
    await session.start()
    speech = [parse_rtp(data) for data in pcap_udp_payloads(SIPP_PCAPS / "g711a.pcap")]
    for data in pcap_udp_payloads(SIPP_PCAPS / "g711a.pcap"):
        await deliver(peer, session, data)
        clock.advance(len(speech[0].payload) / 8000)  # its packets hold 30 ms
    clock.advance(0.1)
    for data in pcap_udp_payloads(SIPP_PCAPS / "dtmf_2833_1.pcap"):
        await deliver(peer, session, data)
    session.close()
    heard_speech = b"".join(heard.audio).strip(b"\x00")
    assert heard_speech == b"".join(alaw_to_pcm16(p.payload) for p in speech).strip(b"\x00")
    assert heard.keys == ["1"]
    assert session.counts["received"] == len(speech) + 10 and session.counts["bad"] == 0


def pcap_udp_payloads(path: Path) -> list[bytes]:
    """The UDP payloads of a classic pcap file of Ethernet frames carrying IPv4 (as sipp's are)."""
    data = path.read_bytes()
    assert struct.unpack_from("<IH", data) == (0xA1B2C3D4, 2) and struct.unpack_from("<I", data, 20) == (1,)
    payloads, offset = [], 24
    while offset < len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16:offset + 16 + length]
        ip_header = (frame[14] & 0x0F) * 4
        payloads.append(frame[14 + ip_header + 8:])
        offset += 16 + length
    return payloads


# --- bad input ----------------------------------------------------------------------------------


async def test_garbage_and_a_64_kib_datagram_are_dropped_and_the_call_goes_on(
        session: RtpSession, peer: RtpPeer, clock: ManualClock, heard: Heard) -> None:
    await deliver(peer, session, b"\x00", b"INVITE sip:bot@127.0.0.1 SIP/2.0\r\n\r\n", b"\x80" * 65000,
                  rtp(1, pt=96), rtp(1, b""), rtp(1, b"\xff" * 4000), rtp(1, b"\x01", pt=101),
                  b"\x80\xc8" + bytes(26))
    assert session.counts["bad"] == 8 and session.counts["received"] == 0
    session.send(ulaw_frame(1))
    assert (await peer.packet()).payload == ulaw_frame(1)  # garbage never latches
    assert await timeline(peer, session, clock, "2 t 3 t t") == ["-", "2", "3"]


# --- ports, end and inactivity ------------------------------------------------------------------


async def test_ports_are_even_ports_of_the_range_and_run_out_cleanly(peer: RtpPeer, heard: Heard) -> None:
    port = free_even_port()
    ports = RtpPorts(range(port - 1, port + 2), "127.0.0.1")  # odd, even, odd: one usable port
    first = RtpSession(ports, peer.address, "PCMU", None, heard.handlers)
    await first.start()
    assert first.port == port
    second = RtpSession(ports, peer.address, "PCMU", None, heard.handlers)
    with pytest.raises(RtpPortsExhausted, match=f"no free even RTP port in {port - 1}-{port + 1}"):
        await second.start()
    first.close()
    await asyncio.sleep(0)  # the transport closes its socket on the loop's next turn
    await second.start()  # the port is free again
    assert second.port == port
    second.close()


def test_ports_bind_on_a_host_name_or_an_ipv6_address() -> None:
    port = free_even_port()
    for host in ("localhost", "::1"):
        with RtpPorts(range(port, port + 1), host).bind() as sock:
            assert sock.getsockname()[1] == port


async def test_close_frees_the_socket_and_stops_every_callback(
        session: RtpSession, peer: RtpPeer, clock: ManualClock, heard: Heard) -> None:
    await deliver(peer, session, rtp(1))
    clock.advance(0.1)
    session.close()
    session.close()
    await asyncio.sleep(0)  # the transport closes its socket on the loop's next turn
    heard.audio.clear()
    clock.advance(60)
    assert (heard.audio, heard.inactive, clock.pending) == ([], 0, 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", session.port))  # would raise EADDRINUSE if the session's socket were open
    session.send(ulaw_frame(1))
    assert session.counts["sent"] == 0


async def test_no_rtp_for_30_s_is_reported_once(session: RtpSession, peer: RtpPeer, clock: ManualClock,
                                                heard: Heard) -> None:
    clock.advance(29.9)
    await deliver(peer, session, rtp(1))
    clock.advance(29.9)
    assert heard.inactive == 0
    clock.advance(0.2)
    assert heard.inactive == 1
    clock.advance(120)
    assert heard.inactive == 1

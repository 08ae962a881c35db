"""RTP packets (RFC 3550 §5.1) parsed from and written to bytes."""

from __future__ import annotations

import struct

import pytest

from adapter.doors.sip.rtp import RtpPacket, RtpParseError, build_rtp, parse_rtp


def header(first: int = 0x80, second: int = 0, seq: int = 7, timestamp: int = 160, ssrc: int = 0xDEADBEEF) -> bytes:
    return struct.pack("!BBHII", first, second, seq, timestamp, ssrc)


def test_round_trip_keeps_every_field() -> None:
    packet = RtpPacket(payload_type=8, seq=65535, timestamp=0xFFFFFFFF, ssrc=1, payload=b"\xd5" * 160, marker=True)
    wire = build_rtp(packet)
    assert wire[:2] == b"\x80\x88" and len(wire) == 172
    assert parse_rtp(wire) == packet


def test_csrcs_extension_and_padding_are_skipped() -> None:
    csrcs = struct.pack("!II", 11, 12)
    extension = struct.pack("!HH", 0xBEDE, 2) + b"\x01" * 8  # two 32-bit words
    padding = b"\x00\x00\x03"
    wire = header(first=0x80 | 0x20 | 0x10 | 2, second=0x80 | 0) + csrcs + extension + b"abc" + padding
    packet = parse_rtp(wire)
    assert (packet.payload, packet.marker, packet.payload_type, packet.seq, packet.timestamp, packet.ssrc) == (
        b"abc", True, 0, 7, 160, 0xDEADBEEF)


@pytest.mark.parametrize("wire, reason", [
    (b"", "shorter than an RTP header"),
    (b"\x80\x00\x00", "shorter than an RTP header"),
    (b"GET / HTTP/1.1\r\n\r\n", "version 1"),
    (header(first=0x40) + b"x", "version 1"),
    (header(second=200) + b"\x00" * 8, "RTCP"),  # a sender report multiplexed on the RTP port
    (header(first=0x80 | 3) + b"\x00" * 8, "longer than the packet"),  # three CSRCs promised, two there
    (header(first=0x90) + b"\xbe\xde", "extension cut short"),
    (header(first=0x90) + struct.pack("!HH", 0xBEDE, 9) + b"\x00" * 8, "longer than the packet"),
    (header(first=0xA0) + b"ab\x09", "longer than the packet"),  # 9 bytes of padding in 3
    (header(first=0xA0) + b"ab\x00", "longer than the packet"),  # padding count 0 is not padding
])
def test_malformed_packets_are_refused(wire: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError, match=reason):
        parse_rtp(wire)

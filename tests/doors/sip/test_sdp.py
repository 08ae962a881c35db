"""SDP offer/answer: G.711 only from the offer (PCMU preferred), the offer's telephone-event type, 488 cases."""

from __future__ import annotations

import pytest

from adapter.doors.sip import sdp


def offer(formats: str, *attributes: str, media: str = "", connection: str = "c=IN IP4 192.0.2.5") -> bytes:
    lines = ["v=0", "o=- 1 1 IN IP4 192.0.2.5", "s=-", connection, "t=0 0", f"m=audio 4000 RTP/AVP {formats}",
             *attributes, *([media] if media else [])]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_pcmu_is_preferred_and_telephone_event_keeps_the_offers_type() -> None:
    parsed = sdp.parse_offer(offer("8 0 96", "a=rtpmap:96 telephone-event/8000", media="m=video 5000 RTP/AVP 31"))
    assert (parsed.address, parsed.port, parsed.codec, parsed.payload_type, parsed.event_type) == \
        ("192.0.2.5", 4000, "PCMU", 0, 96)
    text = sdp.answer(parsed, "198.51.100.1", 20000).decode()
    assert "m=audio 20000 RTP/AVP 0 96\r\n" in text
    assert "a=rtpmap:96 telephone-event/8000\r\n" in text
    assert "c=IN IP4 198.51.100.1\r\n" in text and "a=ptime:20\r\n" in text
    assert "m=video 0 RTP/AVP 31\r\n" in text  # refused, in its place
    assert "PCMA" not in text and "Opus" not in text


def test_pcma_alone_and_dynamic_g711() -> None:
    assert sdp.parse_offer(offer("8 101", "a=rtpmap:101 telephone-event/8000")).codec == "PCMA"
    dynamic = sdp.parse_offer(offer("97", "a=rtpmap:97 PCMU/8000"))
    assert (dynamic.codec, dynamic.payload_type, dynamic.event_type) == ("PCMU", 97, None)


def test_hold_is_mirrored() -> None:
    held = sdp.parse_offer(offer("0", "a=sendonly"))
    assert "a=recvonly" in sdp.answer(held, "198.51.100.1", 20000).decode()
    assert sdp.parse_offer(offer("0", "c=IN IP4 0.0.0.0")).address == "0.0.0.0"


@pytest.mark.parametrize(("body", "reason"), [
    (offer("9 18 111", "a=rtpmap:111 opus/48000/2"), "no G.711"),
    (b"v=0\r\nc=IN IP4 192.0.2.5\r\nm=video 5000 RTP/AVP 31\r\n", "no audio"),
    (offer("0", connection=""), "no connection address"),
    (b"v=0\r\nm=audio x RTP/AVP 0\r\n", "bad media line"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_unanswerable_offers(body: bytes, reason: str) -> None:
    with pytest.raises(sdp.SdpError, match=reason):
        sdp.parse_offer(body)

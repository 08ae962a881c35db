"""AudioSocket frames read from a real asyncio stream and written back: every kind, and every way a
peer can break the framing (res/res_audiosocket.c; specs/telephony.md §6.1)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from adapter.doors.audiosocket.frames import (
    HANGUP_FRAME,
    Audio,
    CallId,
    Dtmf,
    FrameError,
    Hangup,
    Kind,
    PeerError,
    encode,
    frame_bytes,
    read_frame,
)

CALL = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")


def stream(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def frames_of(data: bytes, audio_kind: int = Kind.AUDIO) -> list[object]:
    reader, found = stream(data), []
    while (frame := await read_frame(reader, audio_kind)) is not None:
        found.append(frame)
    return found


async def test_every_kind_asterisk_sends_is_read():
    pcm = bytes(range(256)) + bytes(64)
    wire = (bytes([0x01, 0x00, 0x10]) + CALL.bytes  # the length is big-endian
            + encode(Kind.AUDIO, pcm) + encode(Kind.DTMF, b"5") + encode(Kind.DTMF, b"#")
            + encode(Kind.ERROR, b"\x01") + encode(Kind.ERROR) + b"\x00\x00\x00")
    assert await frames_of(wire) == [CallId(CALL), Audio(pcm), Dtmf("5"), Dtmf("#"), PeerError(1), PeerError(None),
                                     Hangup()]
    assert PeerError(0x03).meaning == "0x03 (the caller hung up, frame forwarding error)"


async def test_end_of_stream_between_frames_is_a_hang_up():
    assert await read_frame(stream(b"")) is None


def test_what_we_send_is_framed_as_asterisk_reads_it():
    assert HANGUP_FRAME == b"\x00\x00\x00"
    assert encode(Kind.AUDIO, b"\x01\x02" * 160) == b"\x10\x01\x40" + b"\x01\x02" * 160
    assert (frame_bytes(8000), frame_bytes(16000)) == (320, 640)


async def test_wider_rate_audio_is_taken_only_when_enabled():
    assert await frames_of(encode(0x12, bytes(640)), audio_kind=0x12) == [Audio(bytes(640))]
    with pytest.raises(FrameError) as err:
        await frames_of(encode(0x12, bytes(640)))
    assert err.value.reason == ("audio kind 0x12 (16000 Hz) is not enabled; this listener takes 0x10 (8000 Hz, "
                                "KORE_VOICE_AUDIOSOCKET_RATE)")


@pytest.mark.parametrize(("wire", "reason"), [
    (b"GET / HTTP/1.1\r\n", "unknown frame kind 0x47"),
    (encode(0x02, b"x"), "unknown frame kind 0x02"),
    (b"\x10\x00\x00", "audio frame of 0 bytes (whole 16-bit samples, 2 to 16000 bytes)"),
    (encode(Kind.AUDIO, bytes(321)), "audio frame of 321 bytes (whole 16-bit samples, 2 to 16000 bytes)"),
    (b"\x10\xff\xff", "audio frame of 65535 bytes (whole 16-bit samples, 2 to 16000 bytes)"),
    (encode(Kind.UUID, CALL.bytes[:8]), "uuid frame of 8 bytes (must be 16)"),
    (encode(Kind.DTMF, b"55"), "dtmf frame of 2 bytes (must be 1)"),
    (encode(Kind.DTMF, b"\x07"), "DTMF frame holding byte 0x07, not a key"),
    (encode(Kind.HANGUP, b"x"), "hangup frame of 1 bytes (must be 0)"),
    (encode(Kind.ERROR, b"xy"), "error frame of 2 bytes (must be 0 or 1)"),
    (b"\x10\x01", "the connection ended inside a frame header (2 of 3 bytes)"),
    (b"\x10\x01\x40" + bytes(100), "the connection ended inside a frame (100 of 320 bytes)"),
])
async def test_a_frame_that_breaks_the_protocol_says_why(wire, reason):
    with pytest.raises(FrameError) as err:
        await frames_of(wire)
    assert err.value.reason == reason


async def test_an_oversized_length_is_refused_before_its_payload_arrives():
    """A peer declaring 64 KiB is not waited for: the header alone condemns it."""
    with pytest.raises(FrameError):
        await asyncio.wait_for(read_frame(stream(b"\x10\xff\xff", eof=False)), 1)

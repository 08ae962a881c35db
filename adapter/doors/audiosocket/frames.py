"""AudioSocket frames (Asterisk `res/res_audiosocket.c`; specs/telephony.md §6.1), read and written.

A frame is its kind (1 byte), the payload's length (unsigned 16 bits, **big-endian**) and the payload.
Asterisk sends the call's UUID first (0x01, 16 raw bytes), then audio (0x10: signed 16-bit
**little-endian** mono at 8 kHz; 0x11-0x18 are higher rates from the channel driver), keys (0x03, one
ASCII character, Asterisk 20+), a hang-up (0x00, empty; plain EOF means the same) or an error (0xff,
optionally a one-byte code). We send only audio of the call's kind, never empty (Asterisk ends the call
on one), and 0x00 to hang up.

Every frame that breaks these rules raises `FrameError` with a reason for the log; its length is judged
before its payload is read, so a peer cannot make us wait for (or hold) a payload no call sends.
"""

from __future__ import annotations

import asyncio
import enum
import struct
import uuid
from dataclasses import dataclass

HEADER = struct.Struct("!BH")


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10  # 8 kHz
    ERROR = 0xFF


#: the audio kinds and their sample rates (0x11 is 12 kHz, 0x12 16 kHz: the current Asterisk numbering)
AUDIO_RATES = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000,
               0x17: 96000, 0x18: 192000}
AUDIO_KINDS = {rate: kind for kind, rate in AUDIO_RATES.items()}
#: keys Asterisk reports; A-D exist on a few keypads and reach us too
DTMF_CHARS = "0123456789*#ABCD"
#: what 0xff's one-byte code means (bits; Asterisk may combine them)
ERROR_CODES = {0x01: "the caller hung up", 0x02: "frame forwarding error", 0x04: "memory error"}
FRAME_S = 0.02
#: the longest audio frame taken, in seconds: Asterisk sends 20 ms; a second is no frame of a call's
MAX_AUDIO_S = 1.0


class FrameError(Exception):
    """The peer broke the protocol: close its connection; `reason` says why, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CallId:
    value: uuid.UUID


@dataclass(frozen=True, slots=True)
class Audio:
    pcm: bytes  # 16-bit little-endian mono at the door's rate


@dataclass(frozen=True, slots=True)
class Dtmf:
    key: str


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class PeerError:
    """Asterisk's 0xff; `code` None when it came without one."""

    code: int | None

    @property
    def meaning(self) -> str:
        if self.code is None:
            return "no code"
        named = [text for bit, text in ERROR_CODES.items() if self.code & bit]
        return f"0x{self.code:02x} ({', '.join(named) or 'unknown code'})"


Frame = CallId | Audio | Dtmf | Hangup | PeerError


#: the payload lengths each kind other than audio may have
_LENGTHS: dict[int, tuple[int, ...]] = {Kind.HANGUP: (0,), Kind.UUID: (16,), Kind.DTMF: (1,), Kind.ERROR: (0, 1)}


def _check_length(kind: int, length: int, audio_kind: int) -> None:
    """Whether a frame of `kind` may be `length` long, judged before its payload is read."""
    if kind in AUDIO_RATES:
        if kind != audio_kind:
            raise FrameError(f"audio kind 0x{kind:02x} ({AUDIO_RATES[kind]} Hz) is not enabled; this listener "
                             f"takes 0x{audio_kind:02x} ({AUDIO_RATES[audio_kind]} Hz, KORE_VOICE_AUDIOSOCKET_RATE)")
        most = int(AUDIO_RATES[kind] * 2 * MAX_AUDIO_S)
        if length == 0 or length % 2 or length > most:
            raise FrameError(f"audio frame of {length} bytes (whole 16-bit samples, 2 to {most} bytes)")
        return
    expected = _LENGTHS.get(kind)
    if expected is None:
        raise FrameError(f"unknown frame kind 0x{kind:02x}")
    if length not in expected:
        raise FrameError(f"{Kind(kind).name.lower()} frame of {length} bytes (must be "
                         f"{' or '.join(map(str, expected))})")


def _parse(kind: int, payload: bytes) -> Frame:
    match kind:
        case Kind.HANGUP:
            return Hangup()
        case Kind.UUID:
            return CallId(uuid.UUID(bytes=payload))
        case Kind.DTMF:
            key = chr(payload[0])
            if key not in DTMF_CHARS:
                raise FrameError(f"DTMF frame holding byte 0x{payload[0]:02x}, not a key")
            return Dtmf(key)
        case Kind.ERROR:
            return PeerError(payload[0] if payload else None)
    return Audio(payload)


async def read_frame(reader: asyncio.StreamReader, audio_kind: int = Kind.AUDIO) -> Frame | None:
    """The next frame, or None when the peer closed the connection between frames (a hang-up).

    Raises:
        FrameError: the frame breaks the protocol, or the connection ended inside it.
    """
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError(f"the connection ended inside a frame header ({len(exc.partial)} of 3 bytes)") from None
    kind, length = HEADER.unpack(header)
    _check_length(kind, length, audio_kind)
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"the connection ended inside a frame ({len(exc.partial)} of {length} bytes)") from None
    return _parse(kind, payload)


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One frame on the wire."""
    return HEADER.pack(kind, len(payload)) + payload


HANGUP_FRAME = encode(Kind.HANGUP)


def frame_bytes(rate: int) -> int:
    """The bytes of 20 ms of audio at `rate` (320 at 8 kHz)."""
    return int(rate * FRAME_S) * 2

"""G.711 μ-law and A-law as numpy lookup tables, bit-exact with CPython 3.11's audioop."""

from __future__ import annotations

import numpy as np

from adapter.audio.errors import MalformedAudio

# The formulas below are the bit-exact ones from specs/telephony.md §9.2; they run once, at
# import, to fill the tables, so coding a frame is a single numpy `take`.


def _ulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.uint8)
    sign, exp, mant = u & 0x80, (u >> 4) & 7, (u & 0x0F).astype(np.int32)
    mag = (((mant << 3) + 0x84) << exp) - 0x84
    return np.where(sign != 0, -mag, mag).astype("<i2")


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.uint8) ^ 0x55
    sign, exp, mant = a & 0x80, (a >> 4) & 7, (a & 0x0F).astype(np.int32)
    mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
    return np.where(sign != 0, mag, -mag).astype("<i2")


_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _ulaw_encode(pcm16: np.ndarray) -> np.ndarray:
    v = pcm16.astype(np.int32) >> 2
    neg = v < 0
    v = np.where(neg, -v, v)
    mask = np.where(neg, 0x7F, 0xFF)
    v = np.minimum(v, 8159) + 33
    seg = np.searchsorted(_ULAW_SEGMENT_ENDS, v)
    u = np.where(seg >= 8, 0x7F, (seg << 4) | ((v >> (seg + 1)) & 0x0F))
    return (u ^ mask).astype(np.uint8)


def _alaw_encode(pcm16: np.ndarray) -> np.ndarray:
    v = pcm16.astype(np.int32) >> 3
    mask = np.where(v >= 0, 0xD5, 0x55)
    v = np.where(v >= 0, v, -v - 1)
    seg = np.searchsorted(_ALAW_SEGMENT_ENDS, v)
    mant = np.where(seg < 2, v >> 1, v >> seg) & 0x0F
    a = np.where(seg >= 8, 0x7F, (seg << 4) | mant)
    return (a ^ mask).astype(np.uint8)


# Every int16 value in the order of its uint16 bit pattern, so that `table[samples.view(uint16)]`
# is the code for each sample.
_EVERY_SAMPLE = np.arange(65536, dtype=np.uint16).view(np.int16)
_ULAW_TO_PCM = _ulaw_decode_table()
_ALAW_TO_PCM = _alaw_decode_table()
_PCM_TO_ULAW = _ulaw_encode(_EVERY_SAMPLE)
_PCM_TO_ALAW = _alaw_encode(_EVERY_SAMPLE)


def _sample_bits(data: bytes) -> np.ndarray:
    if len(data) % 2:
        raise MalformedAudio(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<u2")


def ulaw_to_pcm16(data: bytes) -> bytes:
    """μ-law codes to 16-bit little-endian PCM (one sample per byte)."""
    return _ULAW_TO_PCM.take(np.frombuffer(data, dtype=np.uint8)).tobytes()


def alaw_to_pcm16(data: bytes) -> bytes:
    """A-law codes to 16-bit little-endian PCM (one sample per byte)."""
    return _ALAW_TO_PCM.take(np.frombuffer(data, dtype=np.uint8)).tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    """16-bit little-endian PCM to μ-law codes; raises MalformedAudio on an odd byte count."""
    return _PCM_TO_ULAW.take(_sample_bits(data)).tobytes()


def pcm16_to_alaw(data: bytes) -> bytes:
    """16-bit little-endian PCM to A-law codes; raises MalformedAudio on an odd byte count."""
    return _PCM_TO_ALAW.take(_sample_bits(data)).tobytes()

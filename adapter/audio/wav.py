"""RIFF/WAVE read (header checked against the limits first) and write; the sample layouts it shares."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from adapter.audio import g711
from adapter.audio.errors import AudioTooLong, MalformedAudio, UnsupportedAudio
from adapter.audio.limits import AudioLimits
from adapter.audio.pcm import Pcm

#: Sample rates below this come from a damaged header, not from a recording.
MIN_RATE = 1_000

# Tools writing to a pipe cannot seek back to fix the sizes: espeak-ng and sox leave 0x7FFFF000
# (or a little more) and ffmpeg 0xFFFFFFFF. Such a data chunk runs to the end of the file.
_UNKNOWN_SIZE = 0x7FFF_F000


def _unsigned8(raw: bytes | memoryview) -> np.ndarray:
    return (np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8


def _int24(raw: bytes | memoryview) -> np.ndarray:
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
    low, mid, high = b[:, 0].astype(np.int32), b[:, 1].astype(np.int32), b[:, 2].view(np.int8)
    value = low | (mid << 8) | (high.astype(np.int32) << 16)
    return np.minimum((value + 0x80) >> 8, 32767)


def _int32(raw: bytes | memoryview) -> np.ndarray:
    value = np.frombuffer(raw, dtype="<i4").astype(np.int64)
    return np.minimum((value + 0x8000) >> 16, 32767)


def _float(dtype: str) -> Callable[[bytes | memoryview], np.ndarray]:
    def convert(raw: bytes | memoryview) -> np.ndarray:
        x = np.nan_to_num(np.frombuffer(raw, dtype=dtype).astype(np.float64), nan=0.0)
        return np.clip(np.rint(np.clip(x, -1.0, 1.0) * 32768.0), -32768, 32767)
    return convert


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one sample is stored, and how to bring it to the 16-bit scale."""

    name: str
    width: int
    to_16bit: Callable[[bytes | memoryview], np.ndarray]


ENCODINGS: dict[str, Encoding] = {e.name: e for e in (
    Encoding("u8", 1, _unsigned8),
    Encoding("s16le", 2, lambda raw: np.frombuffer(raw, dtype="<i2")),
    Encoding("s16be", 2, lambda raw: np.frombuffer(raw, dtype=">i2")),
    Encoding("s24le", 3, _int24),
    Encoding("s32le", 4, _int32),
    Encoding("f32le", 4, _float("<f4")),
    Encoding("f64le", 8, _float("<f8")),
    Encoding("ulaw", 1, lambda raw: np.frombuffer(g711.ulaw_to_pcm16(raw), dtype="<i2")),
    Encoding("alaw", 1, lambda raw: np.frombuffer(g711.alaw_to_pcm16(raw), dtype="<i2")),
)}


def check_layout(channels: int, rate: int, source: str, limits: AudioLimits) -> None:
    """Reject channel counts and rates no real audio has (malformed) or over the limits (unsupported),
    before anything is decoded; `source` names who declared them."""
    if channels < 1:
        raise MalformedAudio(f"{source} declares {channels} channels")
    if rate < MIN_RATE:
        raise MalformedAudio(f"{source} declares a sample rate of {rate} Hz (expected {MIN_RATE} or more)")
    if channels > limits.max_channels:
        raise UnsupportedAudio(f"{source} has {channels} channels; at most {limits.max_channels} are decoded")
    if rate > limits.max_rate:
        raise UnsupportedAudio(f"{source} is sampled at {rate} Hz; at most {limits.max_rate} Hz is decoded")


def samples_to_pcm(
    payload: bytes | memoryview, encoding: str, channels: int, rate: int,
    limits: AudioLimits = AudioLimits(), source: str = "audio",
) -> Pcm:
    """Interleaved samples to mono Pcm, channels averaged; a trailing partial frame is dropped.

    Layout and duration are checked before anything is decoded.
    """
    check_layout(channels, rate, source, limits)
    enc = ENCODINGS[encoding]
    frames = len(payload) // (enc.width * channels)
    if frames / rate > limits.max_seconds:
        raise AudioTooLong(
            f"{source} lasts {frames / rate:.1f} s, over the {limits.max_seconds:g} s limit"
        )
    samples = enc.to_16bit(payload[: frames * enc.width * channels])
    if channels > 1:
        samples = np.rint(samples.reshape(frames, channels).mean(axis=1))
    return Pcm(samples.astype("<i2").tobytes(), rate)


@dataclass(frozen=True, slots=True)
class WavHeader:
    """What a WAV file says about its data chunk, checked for consistency with the file."""

    encoding: str
    channels: int
    rate: int
    data_offset: int
    data_size: int

    @property
    def frames(self) -> int:
        return self.data_size // (ENCODINGS[self.encoding].width * self.channels)

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate


# Format tags (RFC 2361 / mmreg.h) we decode, and a few common ones we name when refusing them.
_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_TAG_NAMES = {
    0x0002: "MS ADPCM", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10", 0x0040: "G.721 ADPCM",
    0x0050: "MPEG", 0x0055: "MP3", 0x0064: "G.726 ADPCM", 0x0065: "G.722 ADPCM",
    0x00FF: "AAC", 0x1610: "AAC", 0x6750: "Vorbis", 0x704F: "Opus", 0xF1AC: "FLAC",
}
# The GUID of a WAVE_FORMAT_EXTENSIBLE sub-format is a plain format tag followed by this tail.
_KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def _encoding_for(tag: int, bits: int) -> str:
    if tag == _PCM:
        if not 1 <= bits <= 32:
            raise MalformedAudio(f"WAV PCM cannot have {bits} bits per sample")
        # Samples narrower than their container are left-justified, so read the container.
        return {1: "u8", 2: "s16le", 3: "s24le", 4: "s32le"}[(bits + 7) // 8]
    if tag == _FLOAT:
        if bits not in (32, 64):
            raise MalformedAudio(f"WAV float cannot have {bits} bits per sample")
        return "f32le" if bits == 32 else "f64le"
    if tag in (_ULAW, _ALAW):
        if bits != 8:
            raise MalformedAudio(f"WAV G.711 cannot have {bits} bits per sample")
        return "ulaw" if tag == _ULAW else "alaw"
    name = f" ({_TAG_NAMES[tag]})" if tag in _TAG_NAMES else ""
    raise UnsupportedAudio(f"WAV format tag 0x{tag:04X}{name} is not supported")


def _parse_fmt(body: bytes, limits: AudioLimits) -> tuple[str, int, int]:
    if len(body) < 16:
        raise MalformedAudio(f"WAV fmt chunk is {len(body)} bytes, shorter than 16")
    tag, channels, rate, _byte_rate, _block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise MalformedAudio("WAV extensible fmt chunk is shorter than 40 bytes")
        guid = body[24:40]
        if guid[2:] != _KSDATAFORMAT_TAIL:
            raise UnsupportedAudio(
                f"WAV sub-format {uuid.UUID(bytes_le=guid)} is not supported"
            )
        tag = int.from_bytes(guid[:2], "little")
    check_layout(channels, rate, "WAV header", limits)
    return _encoding_for(tag, bits), channels, rate


def read_wav_header(data: bytes, limits: AudioLimits = AudioLimits()) -> WavHeader:
    """Walk the RIFF chunks up to `data`, skipping unknown ones (LIST, fact, ...)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if data[:4] in (b"RF64", b"BW64"):
            raise UnsupportedAudio("RF64 WAV (for files over 4 GB) is not supported")
        if data[:4] == b"RIFX":
            raise UnsupportedAudio("big-endian RIFX WAV is not supported")
        raise MalformedAudio("not a WAV file: no RIFF/WAVE header")
    fmt: tuple[str, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        start, available = pos + 8, len(data) - pos - 8
        if chunk_id == b"data":
            if fmt is None:
                raise MalformedAudio("WAV data chunk comes before the fmt chunk")
            if size >= _UNKNOWN_SIZE:
                size = available
            elif size > available:
                raise MalformedAudio(
                    f"WAV data chunk claims {size} bytes but the file holds {available}"
                )
            return WavHeader(*fmt, data_offset=start, data_size=size)
        if size > available:
            raise MalformedAudio(
                f"WAV {chunk_id.decode('latin-1')!r} chunk claims {size} bytes "
                f"but the file holds {available}"
            )
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(data[start:start + size], limits)
        pos = start + size + (size & 1)  # chunks are padded to an even length
    raise MalformedAudio("WAV has no fmt chunk" if fmt is None else "WAV has no data chunk")


def read_wav(data: bytes, limits: AudioLimits = AudioLimits()) -> Pcm:
    """Mono Pcm at the file's own rate; the header is checked against `limits` first."""
    h = read_wav_header(data, limits)
    payload = memoryview(data)[h.data_offset:h.data_offset + h.data_size]
    return samples_to_pcm(payload, h.encoding, h.channels, h.rate, limits, "WAV")


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _riff(tag: int, rate: int, bits: int, payload: bytes) -> bytes:
    width = bits // 8
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * width, width, bits)
    if tag == _PCM:
        chunks = _chunk(b"fmt ", fmt)
    else:  # non-PCM formats carry cbSize and a fact chunk with the sample count
        frames = len(payload) // width
        chunks = _chunk(b"fmt ", fmt + b"\0\0") + _chunk(b"fact", struct.pack("<I", frames))
    body = b"WAVE" + chunks + _chunk(b"data", payload)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_bytes(pcm: Pcm) -> bytes:
    """A 16-bit PCM mono WAV file at the PCM's rate."""
    return _riff(_PCM, pcm.rate, 16, pcm.data)


def g711_wav_bytes(pcm: Pcm, law: Literal["ulaw", "alaw"]) -> bytes:
    """An 8-bit μ-law (format 7) or A-law (format 6) mono WAV, as phone systems such as
    Twilio's <Play> take; resample to 8 kHz first."""
    if law == "ulaw":
        return _riff(_ULAW, pcm.rate, 8, g711.pcm16_to_ulaw(pcm.data))
    return _riff(_ALAW, pcm.rate, 8, g711.pcm16_to_alaw(pcm.data))

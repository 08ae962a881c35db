"""The output formats in one registry: Pcm to WAV, G.711, L16 (either byte order) or MP3, at their rate."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from adapter.audio import g711
from adapter.audio.decode import MEDIA_TYPES, parse_content_type, whole_number
from adapter.audio.errors import UnsupportedAudio
from adapter.audio.ffmpeg import encode_mp3
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.audio.wav import g711_wav_bytes, wav_bytes

# MPEG-1, -2 and -2.5 Layer III rates; any other is resampled up to the next one.
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# The L16 rates we send (an `Accept: audio/L16;rate=R` naming another is not acceptable): a fixed set,
# so clients cannot make us build and keep one encoding per rate they invent.
L16_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """One way to send audio out: its rate (None keeps the PCM's), media type and extension."""

    name: str
    rate: int | None
    content_type: str
    extension: str
    encoder: Callable[[Pcm], bytes] = dataclasses.field(repr=False, compare=False)
    rates: tuple[int, ...] = ()  # when not empty, the only rates the format can carry

    def output_rate(self, source_rate: int) -> int:
        """The rate audio at `source_rate` is sent at in this format."""
        rate = self.rate or source_rate
        if self.rates and rate not in self.rates:
            rate = min((r for r in self.rates if r >= rate), default=self.rates[-1])
        return rate

    def content_type_for(self, source_rate: int) -> str:
        """The Content-Type of audio encoded from PCM at `source_rate` (L16 names its rate)."""
        if self.content_type == "audio/L16":
            return f"audio/L16;rate={self.output_rate(source_rate)}"
        return self.content_type


FORMATS: dict[str, OutputFormat] = {f.name: f for f in (
    OutputFormat("wav16k", 16000, "audio/wav", "wav", wav_bytes),
    OutputFormat("wav8k", 8000, "audio/wav", "wav", wav_bytes),
    OutputFormat("ulaw8k", 8000, "audio/basic", "ulaw", lambda p: g711.pcm16_to_ulaw(p.data)),
    OutputFormat("alaw8k", 8000, "audio/PCMA", "alaw", lambda p: g711.pcm16_to_alaw(p.data)),
    # Twilio <Play> and similar phone systems take μ-law in a WAV wrapper (format 7)
    OutputFormat("wav-ulaw8k", 8000, "audio/wav", "wav", lambda p: g711_wav_bytes(p, "ulaw")),
    OutputFormat("wav-alaw8k", 8000, "audio/wav", "wav", lambda p: g711_wav_bytes(p, "alaw")),
    # RFC 3551 L16 is big-endian
    OutputFormat("l16", None, "audio/L16", "l16", lambda p: p.samples().astype(">i2").tobytes(),
                 rates=L16_RATES),
    OutputFormat("mp3", None, "audio/mpeg", "mp3", encode_mp3, rates=_MP3_RATES),
    # raw little-endian samples at 16 kHz, as browsers and kiosks play them (the stream door's L16)
    OutputFormat("slin16k", 16000, "audio/slin;rate=16000", "raw", lambda p: p.data),
    # the same at 8 kHz: Asterisk AudioSocket's 0x10 audio
    OutputFormat("slin8k", 8000, "audio/slin;rate=8000", "raw", lambda p: p.data),
)}

# Which output formats answer a media type, by the input format it names; the first wins.
_ANSWERS = {
    "wav": ("wav16k", "wav8k"), "ulaw": ("ulaw8k",), "alaw": ("alaw8k",), "l16": ("l16",),
    "mp3": ("mp3",),
}


def encode_audio(pcm: Pcm, fmt: str | OutputFormat) -> bytes:
    """`pcm` in format `fmt` (a name from FORMATS, or an OutputFormat), resampled once if needed."""
    if isinstance(fmt, str):
        if fmt not in FORMATS:
            raise UnsupportedAudio(
                f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}"
            )
        fmt = FORMATS[fmt]
    return fmt.encoder(resample(pcm, fmt.output_rate(pcm.rate)))


def format_for_content_type(content_type: str) -> OutputFormat | None:
    """The output format that answers a media type such as `audio/basic`, `audio/wav;rate=8000`
    or `audio/L16;rate=8000` (so a door can honour Accept), or None when none does: a `rate=` must be
    ASCII digits naming a rate the format is sent at (for L16 and MP3, one of a fixed set)."""
    media, params = parse_content_type(content_type)
    source = MEDIA_TYPES.get(media)
    rate = whole_number(params["rate"]) if "rate" in params else None
    if source is None or ("rate" in params and rate is None):
        return None
    for name in _ANSWERS.get(source.name, ()):
        fmt = FORMATS[name]
        if rate is None or fmt.rate == rate:
            return fmt
        if fmt.rate is None and fmt.output_rate(rate) == rate:
            return dataclasses.replace(fmt, rate=rate)
    return None

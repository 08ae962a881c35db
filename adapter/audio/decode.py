"""Uploaded audio (bytes and an optional Content-Type) to Pcm at its own rate, limits checked first."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapter.audio import ffmpeg
from adapter.audio.errors import AudioTooLarge, AudioTooLong, MalformedAudio, UnsupportedAudio
from adapter.audio.limits import AudioLimits
from adapter.audio.pcm import Pcm
from adapter.audio.wav import ENCODINGS, check_layout, read_wav, samples_to_pcm


@dataclass(frozen=True, slots=True)
class InputFormat:
    """One way audio arrives: a container we recognise by its magic bytes, or headerless
    samples whose layout the Content-Type must give."""

    name: str
    label: str
    encoding: str | None = None      # headerless samples: their encoding (see wav.ENCODINGS)
    default_rate: int | None = None  # headerless samples: rate when the type has no rate=
    ffmpeg_format: str | None = None  # containers decoded by ffmpeg: its demuxer


WAV = InputFormat("wav", "WAV")
MP3 = InputFormat("mp3", "MP3", ffmpeg_format="mp3")
OGG = InputFormat("ogg", "Ogg", ffmpeg_format="ogg")
FLAC = InputFormat("flac", "FLAC", ffmpeg_format="flac")
WEBM = InputFormat("webm", "WebM", ffmpeg_format="webm")
ULAW = InputFormat("ulaw", "μ-law", encoding="ulaw", default_rate=8000)
ALAW = InputFormat("alaw", "A-law", encoding="alaw", default_rate=8000)
L16 = InputFormat("l16", "L16", encoding="s16be")  # big-endian, RFC 3551 §4.5.11 / RFC 2586
SLIN = InputFormat("slin", "signed linear", encoding="s16le")

#: Media types we decode (lower case), including the aliases phone systems and browsers send.
MEDIA_TYPES: dict[str, InputFormat] = {
    "audio/wav": WAV, "audio/x-wav": WAV, "audio/wave": WAV, "audio/vnd.wave": WAV,
    "audio/mpeg": MP3, "audio/mp3": MP3, "audio/mpeg3": MP3, "audio/x-mp3": MP3,
    "audio/ogg": OGG, "audio/opus": OGG, "application/ogg": OGG,
    "audio/flac": FLAC, "audio/x-flac": FLAC,
    "audio/webm": WEBM,
    # μ-law: RFC 2046 audio/basic, RFC 4856 audio/PCMU, Twilio and Plivo audio/x-mulaw
    "audio/basic": ULAW, "audio/pcmu": ULAW, "audio/x-mulaw": ULAW, "audio/mulaw": ULAW,
    "audio/ulaw": ULAW,
    "audio/pcma": ALAW, "audio/x-alaw": ALAW, "audio/alaw": ALAW,
    "audio/l16": L16,
    # little-endian 16-bit as Asterisk (slin), Vonage and jambonz send it (specs §9.2)
    "audio/slin": SLIN, "audio/x-slin": SLIN, "audio/x-raw": SLIN,
}
_UNDECLARED = ("application/octet-stream", "")


_HTTP_SPACE = " \t"  # RFC 9110 OWS; other whitespace stays in the value and makes it invalid
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """`'Audio/L16; rate=16000'` -> `('audio/l16', {'rate': '16000'})`."""
    media, *items = value.split(";")
    params = {}
    for item in items:
        key, sep, val = item.partition("=")
        if sep:
            params[key.strip(_HTTP_SPACE).lower()] = val.strip(_HTTP_SPACE).strip('"')
    return media.strip(_HTTP_SPACE).lower(), params


def whole_number(text: str) -> int | None:
    """A parameter's value as a number when it is 1 to 9 ASCII digits, else None. `int()` alone would
    also take `1_6000`, `+16000`, full-width or other Unicode digits and surrounding whitespace."""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def _is_mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: sync, a real version/layer, a valid bitrate and rate."""
    if len(head) < 3 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def sniff(data: bytes, frame_sync: bool = True) -> InputFormat | None:
    """The container the magic bytes announce, or None. `frame_sync` also accepts a bare MPEG
    frame header, which raw G.711 can mimic, so it is off when the sender declared raw audio."""
    if (data[:4] == b"RIFF" and data[8:12] == b"WAVE") or data[:4] in (b"RF64", b"BW64", b"RIFX"):
        return WAV
    if data[:4] == b"OggS":
        return OGG
    if data[:4] == b"fLaC":
        return FLAC
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return WEBM
    if data[:3] == b"ID3" or (frame_sync and _is_mpeg_frame(data[:3])):
        return MP3
    return None


def decode_audio(
    data: bytes, content_type: str | None = None, limits: AudioLimits = AudioLimits()
) -> Pcm:
    """Decode to mono Pcm at the source rate (no resampling here), channels averaged.

    Args:
        data: the whole upload.
        content_type: e.g. `audio/wav` or `audio/L16;rate=16000;channels=2` (see MEDIA_TYPES).
            Headerless types take `rate=` (μ-law and A-law default to 8000) and `channels=`.
            None or application/octet-stream: the container is sniffed from its magic bytes.
        limits: byte, duration, rate and channel limits, checked from the size and header before
            decoding (MP3, Ogg, FLAC and WebM are probed first; ffmpeg's output is also capped
            at the duration limit while it is read, for headers that do not tell or lie).

    Raises:
        AudioTooLarge: more than `limits.max_bytes`.
        AudioTooLong: longer than `limits.max_seconds`.
        UnsupportedAudio: an unknown or incomplete Content-Type, an encoding we do not decode,
            or bytes we cannot identify without a Content-Type.
        MalformedAudio: empty data, bytes contradicting the declared type or their own
            header, impossible parameters, or a container ffmpeg cannot decode.
    """
    if len(data) > limits.max_bytes:
        raise AudioTooLarge(
            f"audio is {len(data)} bytes, over the {limits.max_bytes}-byte limit"
        )
    if not data:
        raise MalformedAudio("the audio is empty (0 bytes)")
    media, params = parse_content_type(content_type or "")
    if media in _UNDECLARED:
        found = sniff(data)
        if found is None:
            raise UnsupportedAudio(
                "cannot tell the audio format; send a Content-Type such as audio/wav"
            )
        return _decode_container(data, found, limits)
    declared = MEDIA_TYPES.get(media)
    if declared is None:
        raise UnsupportedAudio(
            f"Content-Type {media!r} is not audio we decode; send WAV, MP3, Ogg, FLAC, WebM, "
            "μ-law, A-law or L16"
        )
    found = sniff(data, frame_sync=declared.encoding is None)
    if found is not None and found is not declared:
        raise MalformedAudio(f"Content-Type says {media} but the data is {found.label}")
    if declared.encoding is not None:
        return _decode_headerless(
            data, declared.encoding, declared.default_rate, media, params, limits
        )
    if found is None and declared is not MP3:  # an MP3 stream may begin mid-frame
        raise MalformedAudio(f"Content-Type says {media} but the data is not {declared.label}")
    return _decode_container(data, declared, limits)


def _int_param(params: dict[str, str], name: str, default: int | None, media: str) -> int:
    text = params.get(name)
    if text is None:
        if default is None:
            raise UnsupportedAudio(f"{media} needs a {name} parameter, e.g. {media};{name}=16000")
        return default
    number = whole_number(text)
    if number is None:
        raise MalformedAudio(f"{media} parameter {name}={text!r} is not a whole number")
    return number


def _decode_headerless(
    data: bytes, encoding: str, default_rate: int | None, media: str, params: dict[str, str],
    limits: AudioLimits,
) -> Pcm:
    rate = _int_param(params, "rate", default_rate, media)
    channels = _int_param(params, "channels", 1, media)
    check_layout(channels, rate, media, limits)
    frame_bytes = ENCODINGS[encoding].width * channels
    if len(data) % frame_bytes:
        raise MalformedAudio(
            f"{media} data is {len(data)} bytes, not a whole number of {frame_bytes}-byte frames"
        )
    return samples_to_pcm(data, encoding, channels, rate, limits, media)


def _decode_container(data: bytes, fmt: InputFormat, limits: AudioLimits) -> Pcm:
    if fmt.ffmpeg_format is None:
        return read_wav(data, limits)
    try:
        info = ffmpeg.probe(data, fmt.ffmpeg_format, fmt.label)
        check_layout(info.channels, info.rate, fmt.label, limits)
        if info.duration_s is not None and info.duration_s > limits.max_seconds:
            raise AudioTooLong(
                f"{fmt.label} audio lasts {info.duration_s:.1f} s, over the {limits.max_seconds:g} s limit"
            )
        pcm = ffmpeg.decode_mono16(
            data, fmt.ffmpeg_format, fmt.label, info.rate, int(limits.max_seconds * info.rate) * 2
        )
    except FileNotFoundError:
        raise UnsupportedAudio(f"decoding {fmt.label} needs ffmpeg, which is not installed") from None
    if pcm is None:
        raise AudioTooLong(f"{fmt.label} audio runs past the {limits.max_seconds:g} s limit")
    return pcm

"""ffmpeg in a child process: the containers we do not parse ourselves (MP3, Ogg, FLAC, WebM) in, MP3 out
(through pydub, which drives ffmpeg for our own prompts).

A 40 KB FLAC can expand to gigabytes of samples, so nothing here trusts the input: `probe` reads the
stream's rate, channels and duration for the caller to check before anything is decoded; `decode_mono16`
has ffmpeg itself mix down to mono 16-bit, reads its output in chunks and kills it past a byte cap, and
ffmpeg's CPU-time limit ends a decoder that spins. Files go through a private temporary folder so ffmpeg
can seek (durations at the end of an Ogg, the Xing header of an MP3 it writes) and its chatter on stderr
can never fill a pipe.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment

from adapter.audio.errors import MalformedAudio
from adapter.audio.pcm import Pcm

PROBE_TIMEOUT_S = 5.0
DECODE_CPU_S = 10  # a 60 s turn decodes in a fraction of a second; this ends a decoder that spins
_CHUNK = 1 << 16
_QUIET = ("-hide_banner", "-v", "error")


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the container says about its first audio stream (duration None when it does not say)."""

    rate: int
    channels: int
    duration_s: float | None


def probe(data: bytes, demuxer: str, label: str) -> StreamInfo:
    """The first audio stream's layout, read by ffprobe with the demuxer forced (no guessing).

    Raises MalformedAudio when ffprobe finds no audio stream; FileNotFoundError without ffprobe.
    """
    with tempfile.TemporaryDirectory(prefix="kore-voice-") as folder:
        source = Path(folder, "in")
        source.write_bytes(data)
        try:
            done = subprocess.run(
                ["ffprobe", *_QUIET, "-f", demuxer, "-select_streams", "a:0", "-of", "json",
                 "-show_entries", "stream=sample_rate,channels,duration:format=duration", str(source)],
                capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise MalformedAudio(f"cannot read the {label} header in {PROBE_TIMEOUT_S:g} s") from None
    if done.returncode:
        raise MalformedAudio(f"cannot decode the {label} data ({_reason(done.stderr)})")
    report = json.loads(done.stdout or b"{}")
    stream = (report.get("streams") or [{}])[0]
    rate, channels = str(stream.get("sample_rate", "")), str(stream.get("channels", ""))
    if not (rate.isascii() and rate.isdigit() and channels.isascii() and channels.isdigit()):
        raise MalformedAudio(f"cannot decode the {label} data (no audio stream)")
    duration = stream.get("duration", report.get("format", {}).get("duration"))
    return StreamInfo(int(rate), int(channels), _seconds(duration))


def decode_mono16(data: bytes, demuxer: str, label: str, rate: int, max_bytes: int) -> Pcm | None:
    """The first audio stream as mono 16-bit at `rate`, or None once ffmpeg's output passes `max_bytes`
    (ffmpeg is killed there, so memory never holds more than the cap and one chunk).

    Raises MalformedAudio when ffmpeg fails or decodes nothing; FileNotFoundError without ffmpeg.
    """
    with tempfile.TemporaryDirectory(prefix="kore-voice-") as folder:
        source, log = Path(folder, "in"), Path(folder, "log")
        source.write_bytes(data)
        out = bytearray()
        with log.open("wb") as stderr, subprocess.Popen(
            ["ffmpeg", *_QUIET, "-nostdin", "-timelimit", str(DECODE_CPU_S), "-f", demuxer, "-i", str(source),
             "-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
            stdout=subprocess.PIPE, stderr=stderr,
        ) as ffmpeg:
            assert ffmpeg.stdout is not None
            while chunk := ffmpeg.stdout.read(_CHUNK):
                out += chunk
                if len(out) > max_bytes:
                    ffmpeg.kill()
                    return None
        if ffmpeg.returncode:
            raise MalformedAudio(f"cannot decode the {label} data ({_reason(log.read_bytes())})")
    if len(out) < 2:
        raise MalformedAudio(f"the {label} data holds no audio")
    return Pcm(bytes(out[: len(out) & ~1]), rate)


def encode_mp3(pcm: Pcm, bitrate: str = "64k") -> bytes:
    """Mono MP3 at the PCM's rate (an MPEG rate), by pydub (ffmpeg writing a file, so the MP3 carries a
    Xing header: players and our decoder then drop the encoder's delay and padding). Only our own
    prompts are encoded; what callers send is decoded by `decode_mono16`, which bounds its output."""
    out = io.BytesIO()
    AudioSegment(data=pcm.data, sample_width=2, frame_rate=pcm.rate, channels=1).export(
        out, format="mp3", bitrate=bitrate)
    return out.getvalue()


def _seconds(value: object) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]  # "N/A", None: unknown
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


_PREFIX = re.compile(r"^(\[[^]]* @ 0x[0-9a-f]+\] |\S+: )")


def _reason(stderr: bytes) -> str:
    """The last line ffmpeg wrote, without its `[demuxer @ 0x…]` or file-name prefix, short."""
    lines = [ln for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return _PREFIX.sub("", lines[-1]).strip()[:100] if lines else "ffmpeg failed"

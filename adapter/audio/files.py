"""Audio files on disk (not HTTP uploads): what format a file holds, from its bytes and, for headerless
G.711, its name."""

from __future__ import annotations

from pathlib import Path

from adapter.audio.decode import sniff
from adapter.audio.errors import UnsupportedAudio

# Raw G.711 files carry no header, so their extension is their content type.
RAW_TYPES = {".ulaw": "audio/basic", ".mulaw": "audio/basic", ".pcmu": "audio/PCMU",
             ".alaw": "audio/PCMA", ".pcma": "audio/PCMA"}


def content_type_of(path: Path, data: bytes) -> str | None:
    """The media type of a file's audio: its container's (whatever the name says), else the raw G.711
    its name says; None for an empty file (the decoder names that). A file is not an HTTP upload, so
    the error speaks of files and names, not of Content-Type headers.

    Raises:
        UnsupportedAudio: neither a container we know nor a raw G.711 name.
    """
    raw = RAW_TYPES.get(path.suffix.lower())
    found = sniff(data, frame_sync=raw is None)  # raw G.711 can mimic an MPEG frame header
    if found is not None:
        return f"audio/{found.name}"
    if raw is None and data:
        raise UnsupportedAudio("cannot tell the audio format: the file is not WAV, MP3, Ogg, FLAC or WebM "
                               "(name headerless G.711 files .ulaw or .alaw)")
    return raw

"""How much audio one turn may carry; checked before decoding wherever the header allows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """Limits on one upload. Rate and channels bound what a small compressed file may expand to
    (a 59 s FLAC at 384 kHz in 7.1 is 40 KB on the wire and 700 MB decoded), so they are checked
    from the header, before decoding; 192 kHz and 7.1 cover every real recording."""

    max_seconds: float = 60.0
    max_bytes: int = 16 * 1024 * 1024
    max_rate: int = 192_000
    max_channels: int = 8

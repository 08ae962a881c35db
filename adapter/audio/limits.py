"""How much audio one turn may carry; checked before decoding wherever the header allows."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.config_reader import Reader


@dataclass(frozen=True, slots=True)
class AudioLimits:
    """Limits on one upload. Rate and channels bound what a small compressed file may expand to
    (a 59 s FLAC at 384 kHz in 7.1 is 40 KB on the wire and 700 MB decoded), so they are checked
    from the header, before decoding; 192 kHz and 7.1 cover every real recording."""

    max_seconds: float = 60.0
    max_bytes: int = 16 * 1024 * 1024
    max_rate: int = 192_000
    max_channels: int = 8

    @classmethod
    def read(cls, r: Reader) -> AudioLimits:
        return cls(
            max_seconds=r.number("KORE_VOICE_MAX_TURN_SECONDS", 60.0, minimum=0.1),
            max_bytes=r.integer("KORE_VOICE_MAX_AUDIO_BYTES", 16 * 1024 * 1024, minimum=1024),
        )

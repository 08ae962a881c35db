"""How much audio one turn may carry; checked before decoding wherever the header allows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioLimits:
    max_seconds: float = 60.0
    max_bytes: int = 16 * 1024 * 1024

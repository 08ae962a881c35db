"""The one internal audio form: 16-bit little-endian mono PCM and its sample rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Pcm:
    """Mono signed 16-bit little-endian samples at `rate` Hz.

    Every codec decodes to this and encodes from it, so nothing inside the process
    needs to know which wire format the audio came in.
    """

    data: bytes
    rate: int

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"sample rate must be positive, got {self.rate}")
        if len(self.data) % 2:
            raise ValueError("16-bit PCM must have an even number of bytes")

    @classmethod
    def from_array(cls, samples: np.ndarray, rate: int) -> Pcm:
        """Build from any numeric array; floats are taken as -1.0..1.0 and clipped."""
        if np.issubdtype(samples.dtype, np.floating):
            samples = np.clip(np.round(samples * 32767.0), -32768, 32767)
        return cls(np.asarray(samples).astype("<i2").tobytes(), rate)

    @classmethod
    def silence(cls, seconds: float, rate: int) -> Pcm:
        return cls(bytes(2 * round(seconds * rate)), rate)

    def samples(self) -> np.ndarray:
        """The samples as a read-only int16 array (no copy)."""
        return np.frombuffer(self.data, dtype="<i2")

    @property
    def frames(self) -> int:
        return len(self.data) // 2

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def __add__(self, other: Pcm) -> Pcm:
        if other.rate != self.rate:
            raise ValueError(f"cannot join {self.rate} Hz and {other.rate} Hz audio")
        return Pcm(self.data + other.data, self.rate)

    def __repr__(self) -> str:
        return f"Pcm({self.duration_s:.3f} s at {self.rate} Hz)"

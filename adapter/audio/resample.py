"""Sample-rate conversion with soxr: once per utterance, or streamed chunk by chunk."""

from __future__ import annotations

import numpy as np
import soxr

from adapter.audio.pcm import Pcm


def _to_int16(samples: np.ndarray) -> bytes:
    # soxr dithers int16 output, which turns digital silence into ±1 noise (and μ-law silence into
    # something other than 0xFF); resampling in float and rounding here keeps silence silent.
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()


def resample(pcm: Pcm, rate: int) -> Pcm:
    """The same audio at `rate` Hz (returned unchanged when it already is)."""
    if pcm.rate == rate or not pcm.data:
        return pcm if pcm.rate == rate else Pcm(b"", rate)
    out = soxr.resample(pcm.samples().astype(np.float32), pcm.rate, rate, quality="HQ")
    return Pcm(_to_int16(out), rate)


class StreamResampler:
    """Converts a live stream chunk by chunk, keeping filter state across chunks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = (
            None if in_rate == out_rate
            else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, data: bytes, last: bool = False) -> bytes:
        """Feed 16-bit PCM at `in_rate`; returns what is ready at `out_rate`."""
        if self._stream is None:
            return data
        out = self._stream.resample_chunk(np.frombuffer(data, dtype="<i2").astype(np.float32), last=last)
        return _to_int16(out)

"""DTMF detector throughput on one core, streamed in 20 ms chunks and on whole buffers, at 8 and 16 kHz.

Baselines measured in the same run: a plain numpy FFT power spectrum of the same 20 ms windows every
5 ms (what a naive detector would start from), and, at 8 kHz, decoding the same audio from μ-law.
The audio is an espeak-ng prompt, 16 keypad tones and white noise (goal: ≥ 200x real time per core).

Run: .venv/bin/python bench/dtmf.py   (about 20 s)
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # one core: before numpy loads its BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from adapter.audio import g711  # noqa: E402
from adapter.audio.dtmf import COLUMNS_HZ, KEYS, ROWS_HZ, DtmfDetector, detect_keys  # noqa: E402
from adapter.audio.pcm import Pcm  # noqa: E402
from adapter.audio.resample import resample  # noqa: E402

SECONDS = 30
RUNS = 7
PROMPT = "Welcome. Press one for sales, two for support, or enter your account number followed by pound."


def prompt(rate: int) -> Pcm:
    """The spoken prompt from espeak-ng, at `rate`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prompt.wav"
        subprocess.run(["espeak-ng", "-w", str(path), PROMPT], check=True, capture_output=True)
        with wave.open(str(path)) as w:
            speech = Pcm(w.readframes(w.getnframes()), w.getframerate())
    return resample(speech, rate)


def keypad(rate: int, rng: np.random.Generator) -> np.ndarray:
    """Each of the 16 keys for 80 ms, 80 ms apart, at -10 dBFS per tone."""
    t = np.arange(round(0.08 * rate)) / rate
    tones = [
        0.316 * (np.sin(2 * np.pi * ROWS_HZ[i // 4] * t) + np.sin(2 * np.pi * COLUMNS_HZ[i % 4] * t))
        for i in range(len(KEYS))
    ]
    gap = np.zeros_like(t)
    return np.concatenate([part for tone in tones for part in (tone, gap)]) + rng.normal(0, 0.002, 2 * t.size * 16)


def line_audio(rate: int) -> tuple[Pcm, bytes | None]:
    """About SECONDS of prompt, keys and noise as the line delivers it (μ-law at 8 kHz), with the μ-law."""
    rng = np.random.default_rng(0)
    speech = prompt(rate).samples() / 32768
    block = np.concatenate((speech, keypad(rate, rng), rng.normal(0, 0.02, rate)))
    signal = np.tile(block, SECONDS * rate // block.size + 1)[: SECONDS * rate]
    pcm = Pcm.from_array(signal, rate)
    if rate != 8000:
        return pcm, None
    ulaw = g711.pcm16_to_ulaw(pcm.data)
    return Pcm(g711.ulaw_to_pcm16(ulaw), rate), ulaw


class FftFrames:
    """Baseline: the power spectrum of the same overlapping windows, streamed the same way."""

    def __init__(self, rate: int) -> None:
        self._hop = rate // 200
        self._length = 4 * self._hop
        self._pending = np.zeros(0)

    def feed(self, data: bytes) -> np.ndarray:
        buffer = np.concatenate((self._pending, np.frombuffer(data, dtype="<i2") * (1 / 32768)))
        count = max(0, (len(buffer) - self._length) // self._hop + 1)
        step = buffer.itemsize
        windows = np.ndarray((count, self._length), buffer.dtype, buffer, 0, (self._hop * step, step))
        self._pending = buffer[count * self._hop :]
        return np.abs(np.fft.rfft(windows, axis=1)) ** 2


def median_seconds(fn: Callable[[], object]) -> float:
    """Median CPU seconds of one call: CPU time, so other processes on a shared machine do not count."""
    fn()  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def streamed(rate: int, chunks: list[bytes]) -> Callable[[], object]:
    def run() -> list:
        detector = DtmfDetector(rate)
        return [key for chunk in chunks for key in detector.feed(chunk)] + detector.flush()
    return run


def fft_streamed(rate: int, chunks: list[bytes]) -> Callable[[], object]:
    def run() -> None:
        frames = FftFrames(rate)
        for chunk in chunks:
            frames.feed(chunk)
    return run


def report(name: str, seconds: float, audio_s: float, chunks: int, baseline: float | None = None) -> None:
    per_chunk = f"{seconds / chunks * 1e6:6.1f} µs per 20 ms chunk" if chunks > 1 else " " * 24
    ratio = f"  {seconds / baseline:5.2f}x the baseline's time" if baseline else ""
    print(f"  {name:<38} {audio_s / seconds:7.0f}x real time  {per_chunk}{ratio}")


def bench(rate: int) -> None:
    pcm, ulaw = line_audio(rate)
    keys = "".join(k.key for k in detect_keys(pcm))
    chunk_bytes = 2 * rate // 50
    chunks = chunks_of(pcm.data, chunk_bytes)
    print(f"{rate} Hz{' (μ-law line)' if ulaw else ''}: {len(keys)} keys found, "
          f"{'all 16 keys per round, in order' if keys == KEYS * (len(keys) // 16) else 'UNEXPECTED: ' + keys}")
    baseline = median_seconds(fft_streamed(rate, chunks))
    report("baseline: numpy FFT, 20 ms chunks", baseline, pcm.duration_s, len(chunks))
    report("detector, 20 ms chunks", median_seconds(streamed(rate, chunks)), pcm.duration_s, len(chunks), baseline)
    whole_baseline = median_seconds(lambda: FftFrames(rate).feed(pcm.data))
    report("baseline: numpy FFT, whole buffer", whole_baseline, pcm.duration_s, 1)
    report("detector, whole buffer", median_seconds(lambda: detect_keys(pcm)), pcm.duration_s, 1, whole_baseline)
    if ulaw:
        ulaw_chunks = chunks_of(ulaw, chunk_bytes // 2)
        decode = median_seconds(lambda: [g711.ulaw_to_pcm16(c) for c in ulaw_chunks])
        report("reference: μ-law decode, 20 ms chunks", decode, pcm.duration_s, len(ulaw_chunks))


def main() -> None:
    print(f"DTMF detector, {SECONDS} s of audio, median CPU time of {RUNS} runs on one core "
          f"({platform.processor() or platform.machine()}, Python {platform.python_version()}, numpy {np.__version__})")
    for rate in (8000, 16000):
        bench(rate)


if __name__ == "__main__":
    main()

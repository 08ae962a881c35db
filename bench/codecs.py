"""Codec throughput: numpy G.711 against Python 3.11's audioop, WAV decoding, 8 -> 16 kHz resampling.

Run: .venv/bin/python bench/codecs.py   (about 20 s)
"""

from __future__ import annotations

import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from adapter.audio import g711
from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import StreamResampler, resample
from adapter.audio.wav import wav_bytes

RATE = 8000
SECONDS = 60
rng = np.random.default_rng(0)
# speech-like level distribution: mostly quiet, some loud, so every G.711 segment is exercised
PCM8K = np.clip(rng.laplace(0, 3000, RATE * SECONDS), -32768, 32767).astype("<i2").tobytes()
ULAW = audioop.lin2ulaw(PCM8K, 2)
ALAW = audioop.lin2alaw(PCM8K, 2)


def timings(fn: Callable[[], object], budget_s: float = 1.0, min_runs: int = 5) -> list[float]:
    """Seconds per call, over at least `min_runs` calls and about `budget_s` seconds."""
    fn()  # warm-up
    out: list[float] = []
    start = time.perf_counter()
    while len(out) < min_runs or time.perf_counter() - start < budget_s:
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def summary(times: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(times, n=10)
    return statistics.median(times), q[-1]


def line(name: str, times: list[float], in_bytes: int, audio_s: float) -> float:
    median, p90 = summary(times)
    print(f"  {name:<26} median {median * 1e6:9.1f} µs  p90 {p90 * 1e6:9.1f} µs  "
          f"{in_bytes / median / 1e6:8.1f} MB/s  {audio_s / median:10.0f}x real time")
    return median


def g711_bench() -> None:
    print(f"G.711 on {SECONDS} s of 8 kHz audio in one call (input MB/s; ratio = audioop / numpy time)")
    cases = [
        ("μ-law encode", lambda: g711.pcm16_to_ulaw(PCM8K), lambda: audioop.lin2ulaw(PCM8K, 2), len(PCM8K)),
        ("A-law encode", lambda: g711.pcm16_to_alaw(PCM8K), lambda: audioop.lin2alaw(PCM8K, 2), len(PCM8K)),
        ("μ-law decode", lambda: g711.ulaw_to_pcm16(ULAW), lambda: audioop.ulaw2lin(ULAW, 2), len(ULAW)),
        ("A-law decode", lambda: g711.alaw_to_pcm16(ALAW), lambda: audioop.alaw2lin(ALAW, 2), len(ALAW)),
    ]
    for name, ours, ref, size in cases:
        mine = line(f"{name} numpy", timings(ours), size, SECONDS)
        base = line(f"{name} audioop", timings(ref), size, SECONDS)
        print(f"  {name:<26} ratio {base / mine:.2f}  (>1: numpy faster)")

    print("G.711 per 20 ms frame (160 samples), as a media stream calls it")
    frame_pcm, frame_ulaw = PCM8K[:320], ULAW[:160]
    for name, ours, ref, size in [
        ("μ-law encode", lambda: g711.pcm16_to_ulaw(frame_pcm), lambda: audioop.lin2ulaw(frame_pcm, 2), 320),
        ("μ-law decode", lambda: g711.ulaw_to_pcm16(frame_ulaw), lambda: audioop.ulaw2lin(frame_ulaw, 2), 160),
    ]:
        mine = line(f"{name} numpy", batch(ours), size, 0.02)
        base = line(f"{name} audioop", batch(ref), size, 0.02)
        print(f"  {name:<26} ratio {base / mine:.2f}")


def batch(fn: Callable[[], object], n: int = 1000) -> list[float]:
    """Per-call times of a very short call, each sample averaged over `n` calls."""
    def many() -> None:
        for _ in range(n):
            fn()
    return [t / n for t in timings(many, budget_s=0.5)]


def decode_bench() -> None:
    print("decode_audio of a 10 s WAV")
    for rate, label in ((16000, "16 kHz mono 16-bit"), (8000, "8 kHz mono 16-bit")):
        pcm = Pcm(PCM8K[: 2 * rate * 10], rate)
        data = wav_bytes(pcm)
        line(label, timings(lambda data=data: decode_audio(data, "audio/wav")), len(data), 10)
    stereo24 = np.repeat(rng.integers(-2**23, 2**23, 44100 * 10), 2).astype("<i4")
    payload = stereo24.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    header = (b"RIFF" + (36 + len(payload)).to_bytes(4, "little") + b"WAVEfmt "
              + (16).to_bytes(4, "little")
              + np.array([1, 2], "<u2").tobytes() + np.array([44100, 44100 * 6], "<u4").tobytes()
              + np.array([6, 24], "<u2").tobytes() + b"data" + len(payload).to_bytes(4, "little"))
    data = header + payload
    line("44.1 kHz stereo 24-bit", timings(lambda data=data: decode_audio(data, "audio/wav")), len(data), 10)
    ulaw = ULAW[: RATE * 10]
    line("8 kHz μ-law (audio/basic)", timings(lambda: decode_audio(ulaw, "audio/basic")), len(ulaw), 10)


def resample_bench() -> None:
    print("resample 8 -> 16 kHz (soxr HQ; baseline: audioop.ratecv, linear interpolation)")
    pcm = Pcm(PCM8K[: 2 * RATE * 10], RATE)
    mine = line("10 s, one call (soxr)", timings(lambda: resample(pcm, 16000)), len(pcm.data), 10)
    base = line("10 s, one call (ratecv)",
                timings(lambda: audioop.ratecv(pcm.data, 2, 1, 8000, 16000, None)), len(pcm.data), 10)
    print(f"  {'one call':<26} ratio {base / mine:.2f}  (>1: soxr faster)")
    frames = [pcm.data[i:i + 320] for i in range(0, len(pcm.data), 320)]

    def stream() -> None:
        r = StreamResampler(8000, 16000)
        for f in frames:
            r.process(f)

    def stream_ratecv() -> None:
        state = None
        for f in frames:
            _, state = audioop.ratecv(f, 2, 1, 8000, 16000, state)

    mine = line("10 s in 20 ms frames (soxr)", timings(stream), len(pcm.data), 10)
    base = line("10 s in 20 ms frames (ratecv)", timings(stream_ratecv), len(pcm.data), 10)
    print(f"  {'20 ms frames':<26} ratio {base / mine:.2f}")


if __name__ == "__main__":
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    g711_bench()
    decode_bench()
    resample_bench()

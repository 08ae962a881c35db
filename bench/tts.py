"""TTS latency: first audio of a one-sentence prompt, uncached and cached, against the bare espeak-ng worker.

    .venv/bin/python bench/tts.py [--n 60]

Prints p50/p95 in ms for: the worker alone (espeak-ng through pyttsx3's binding, the baseline), our
uncached render (text normalisation + synthesis + resample + μ-law encode), and a cached render.
Goals (issue 5): uncached p95 <= 60 ms, cached p95 <= 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from adapter.speech.settings import TtsSettings
from adapter.speech.synthesizer import Synthesizer

SENTENCES = [
    "Your balance is ${}.{:02d} as of today.",
    "For savings press {}, for checking press {}.",
    "Your transfer of ${} to account {} is complete.",
    "Please enter your {} digit account number followed by the pound key, {} attempts left.",
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def show(name: str, ms: list[float]) -> None:
    print(f"{name:<34} p50 {statistics.median(ms):7.2f} ms   p95 {pct(ms, 95):7.2f} ms   n={len(ms)}")


async def main(n: int) -> None:
    async with Synthesizer(TtsSettings()) as synth:
        worker = synth._workers[0]
        texts = [SENTENCES[i % len(SENTENCES)].format(10 + i, i % 100) for i in range(n)]
        voice = synth.default_voice
        raw, uncached, cached = [], [], []
        await synth.render("warm up", "ulaw8k")
        for text in texts:
            t = time.perf_counter()
            await asyncio.to_thread(worker.synthesize, text, voice, synth.settings.words_per_minute, 1.0)
            raw.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await synth.render(text, "ulaw8k")
            uncached.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await synth.render(text, "ulaw8k")
            cached.append((time.perf_counter() - t) * 1000)
        show("espeak-ng worker alone (baseline)", raw)
        show("render uncached (μ-law 8 kHz)", uncached)
        show("render cached", cached)
        overhead = statistics.median(uncached) - statistics.median(raw)
        print(f"overhead of our pipeline over the worker: p50 {overhead:.2f} ms"
              f", ratio worker/ours {statistics.median(raw) / statistics.median(uncached):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=60)
    asyncio.run(main(parser.parse_args().n))

"""REST turn latency: the time the service adds beyond the recogniser, with four calls at once.

    .venv/bin/python bench/turn_latency.py [--calls 4] [--turns 8]

Starts `kore-voice serve --port 0` (embedded demo bot, which answers at once; PocketSphinx; espeak-ng)
and runs concurrent calls whose every turn is a spoken utterance sent as μ-law 8 kHz (`audio/basic`),
answered with the reply audio itself (`Accept: audio/basic`), as a phone system would. Each answer's
`Server-Timing` header gives, for that turn, the recogniser's time (`recognise`), how long its jobs
waited for a free recogniser worker behind the other calls (`recognise-wait`: the recogniser's capacity,
shown apart) and the total from request received to reply audio ready; what the service adds is
total - recognise - recognise-wait (decode, Kore.ai round trip, synthesis, encoding, the event loop).
Goals (issue 6): p50 <= 150 ms, p95 <= 300 ms. One warm-up call first loads the decoders and renders the
demo bot's prompts once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

PHRASES = ("check balance", "what is my balance", "balance please", "how much money do I have")
KORE_VOICE = Path(sys.executable).with_name("kore-voice")
GOALS_MS = {50: 150.0, 95: 300.0}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ulaw_speech(text: str, folder: Path) -> bytes:
    """espeak-ng saying `text`, as raw μ-law 8 kHz (what a phone line carries)."""
    wav, raw = folder / "say.wav", folder / "say.ulaw"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    subprocess.run(["sox", str(wav), "-r", "8000", "-e", "mu-law", "-t", "raw", str(raw)], check=True)
    return raw.read_bytes()


def stages(header: str) -> dict[str, float]:
    """`Server-Timing: decode;dur=1.2, recognise;dur=300.5, ...` as {stage: ms}."""
    found = {}
    for item in header.split(","):
        name, _, duration = item.strip().partition(";dur=")
        found[name] = float(duration)
    return found


async def one_call(http: aiohttp.ClientSession, utterances: list[bytes], turns: int,
                   out: list[tuple[dict[str, float], float]]) -> None:
    async with http.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000"}) as resp:
        call = (await resp.json())["id"]
    headers = {"Content-Type": "audio/basic", "Accept": "audio/basic"}
    for i in range(turns):
        started = time.perf_counter()
        async with http.post(f"/v1/calls/{call}/turns", data=utterances[i % len(utterances)],
                             headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
            out.append((stages(resp.headers["Server-Timing"]), (time.perf_counter() - started) * 1000))
    async with http.delete(f"/v1/calls/{call}"):
        pass


def show(name: str, ms: list[float], goal: bool = False) -> None:
    line = f"{name:<40} p50 {statistics.median(ms):7.1f} ms   p95 {pct(ms, 95):7.1f} ms"
    if goal:
        met = all(pct(ms, p) <= limit for p, limit in GOALS_MS.items())
        line += f"   goal p50 <= {GOALS_MS[50]:g}, p95 <= {GOALS_MS[95]:g}: {'met' if met else 'MISSED'}"
    print(line)


async def run(url: str, utterances: list[bytes], calls: int, turns: int) -> None:
    async with aiohttp.ClientSession(url) as http:
        await one_call(http, utterances, len(utterances), [])  # warm-up: decoders, the bot's prompts
        results: list[tuple[dict[str, float], float]] = []
        started = time.perf_counter()
        await asyncio.gather(*(one_call(http, utterances, turns, results) for _ in range(calls)))
        wall = time.perf_counter() - started
    recognise = [s.get("recognise", 0.0) for s, _ in results]
    waited = [s.get("recognise-wait", 0.0) for s, _ in results]
    added = [s["total"] - s.get("recognise", 0.0) - s.get("recognise-wait", 0.0) for s, _ in results]
    print(f"{calls} concurrent calls x {turns} spoken turns ({len(results)} turns in {wall:.1f} s), "
          f"{os.cpu_count()} CPUs; PocketSphinx, embedded bot, μ-law 8 kHz in and out")
    show("recogniser alone (baseline)", recognise)
    show("waiting for a free recogniser", waited)
    show("service adds (total - recognise - wait)", added, goal=True)
    for stage in ("decode", "bot", "synthesis"):
        show(f"  of which {stage}", [s.get(stage, 0.0) for s, _ in results])
    show("client round trip", [client for _, client in results])
    print(f"ratio service-added / recogniser at p50: {statistics.median(added) / statistics.median(recognise):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--turns", type=int, default=8)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
    env.update(KORE_VOICE_ASR="pocketsphinx", KORE_VOICE_TURNS_PER_MINUTE="1000")
    with tempfile.TemporaryDirectory() as folder:
        utterances = []
        for text in PHRASES:
            utterances.append(ulaw_speech(text, Path(folder)))
        service = subprocess.Popen([str(KORE_VOICE), "serve", "--port", "0", "--log-level", "warning"],
                                   stdout=subprocess.PIPE, env=env, text=True)
        try:
            line = service.stdout.readline()
            asyncio.run(run(line.split("serving on ")[1].split()[0], utterances, args.calls, args.turns))
        finally:
            service.terminate()
            service.wait(timeout=30)


if __name__ == "__main__":
    main()

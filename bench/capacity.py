"""Twilio Media Streams under load: N simultaneous calls in real time against `kore-voice serve`.

    .venv/bin/python bench/twilio_media.py [--calls 10,12,18,24] [--turns 2]

The service runs as a subprocess (PocketSphinx in its worker processes, espeak-ng, media-streams mode);
a small scripted bot (the Kore.ai simulator) runs in this process, and so do the callers: each is a
`MediaPeer` that plays Twilio in real time (20 ms μ-law frames on a monotonic schedule, line silence
between what it says, marks echoed once the audio before them has played). Every call is set up as
Twilio would: a signed `/twilio/voice`, then the stream its TwiML names. A call hears the welcome, then
says "check balance" `--turns` times, each after the previous prompt has played, then hangs up.

Per number of calls it prints:
- outbound frame gaps: time between consecutive `media` frames of one prompt on arrival (goal: none
  over 40 ms at 10 calls), max and p99;
- response: from the caller's last speech frame sent to the first reply frame received (goal: p95 <=
  800 ms with the default 500 ms end-of-speech silence); "right" counts replies that are the expected
  prompt (a wrong or missed recognition gets the no-match prompt instead);
- the service's CPU (its process and its recogniser workers, % of one core) and memory per call
  (main process RSS at the peak over the idle RSS, divided by the calls);
- peer lag: the worst lateness of this process's own event loop (the callers), which arrival gaps
  include: a gap near it is the measuring side's, not the service's.
The capacity line is the most calls that met all three goals. Baselines in the same run: the
recogniser alone on the same utterances (what a reply cannot be faster than, beyond the 500 ms), and
pacing alone with one shared ticker against a ticker task per call, at 10 and 40 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from adapter.audio import g711
from adapter.audio.pcm import Pcm
from adapter.doors.twilio.media_peer import MediaPeer
from adapter.doors.twilio.playout import Playout, Ticker
from adapter.kore.simulator.app import Simulator
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.embedded import serving
from adapter.kore.simulator.script import parse_script
from adapter.speech.sphinx_engine import PocketSphinxRecognizer

KORE_VOICE = Path(sys.executable).with_name("kore-voice")
AUTH_TOKEN = "bench-twilio-auth-token"
PHRASE = "check balance"
MENU = {"options": [{"title": "Check balance", "payload": "balance"},
                    {"title": "Talk to an agent", "payload": "agent"}]}
BOT = parse_script({
    "name": "Bench line",
    "welcome": [{"menu": {"text": "Hello.", **MENU}}],
    "fallback": [{"menu": {"text": "Sorry?", **MENU}}],
    "intents": {"balance": {"keywords": ["balance"], "steps": [{"menu": {"text": "Ten dollars.", **MENU}}]}},
}, "bench line")
GAP_GOAL_S, RESPONSE_GOAL_S = 0.040, 0.800


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} CPUs, {system}, Python {platform.python_version()}"


def caller_audio(folder: Path) -> bytes:
    """espeak-ng (en-us+f2) saying the phrase, as a phone line carries it: raw μ-law 8 kHz, no trailing silence
    (the caller's line sends its own)."""
    wav, raw = folder / "say.wav", folder / "say.ulaw"
    subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "140", "-w", str(wav), PHRASE], check=True)
    # espeak-ng ends with ~0.4 s of silence: trimmed, so the last frame sent is the end of speech.
    subprocess.run(["sox", str(wav), "-c", "1", "-r", "8000", "-e", "mu-law", "-t", "raw", str(raw),
                    "reverse", "silence", "1", "0.02", "0.5%", "reverse", "pad", "0.2", "0"], check=True)
    return raw.read_bytes()


# --- the service's process --------------------------------------------------------------------------------


class Service:
    """`kore-voice serve` in a subprocess; CPU and memory read from /proc."""

    def __init__(self, bot_url: str, bot: SimulatorConfig) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KORE_", "TWILIO_"))}
        env.update(KORE_VOICE_ASR="pocketsphinx", KORE_VOICE_TWILIO_MODE="media-streams",
                   TWILIO_AUTH_TOKEN=AUTH_TOKEN, KORE_WEBHOOK_URL=f"{bot_url}/chatbot/v2/webhook/{bot.bot_id}",
                   KORE_CLIENT_ID=bot.client_id,
                   KORE_CLIENT_SECRET=bot.client_secret.reveal(), KORE_VOICE_TTS_RATE="220",
                   KORE_VOICE_TURNS_PER_MINUTE="1000")
        self.process = subprocess.Popen([str(KORE_VOICE), "serve", "--port", "0", "--log-level", "error"],
                                        stdout=subprocess.PIPE, env=env, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().split("serving on ")[1].split()[0]

    def pids(self) -> list[int]:
        pid = self.process.pid
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
        return [pid, *children]

    def cpu_s(self) -> float:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- calls ---------------------------------------------------------------------------------------------------


@dataclass
class Results:
    gaps: list[float] = field(default_factory=list)
    responses: list[float] = field(default_factory=list)
    right: int = 0
    turns: int = 0
    failures: list[str] = field(default_factory=list)


def prompt_gaps(peer: MediaPeer) -> list[float]:
    return [b.at - a.at for _, frames in peer.prompts() for a, b in itertools.pairwise(frames)]


def echoed(count: int) -> Callable[[MediaPeer], bool]:
    return lambda peer: len(peer.echoed) >= count


def marked(count: int) -> Callable[[MediaPeer], bool]:
    return lambda peer: len(peer.marks) >= count


async def one_call(http: aiohttp.ClientSession, base: str, number: int, speech: bytes, turns: int,
                   expected_reply: bytes | None, results: Results) -> bytes:
    """One call; returns the first reply's audio (the warm-up call's is what the others must hear)."""
    sid = f"CA{number:032x}"
    params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+15551230000", "To": "+15559870000",
              "CallStatus": "in-progress", "Direction": "inbound"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{base}/twilio/voice", params)
    async with http.post(f"{base}/twilio/voice", data=params, headers={"X-Twilio-Signature": signature}) as resp:
        stream = ET.fromstring(await resp.text()).find("./Connect/Stream")
    assert stream is not None
    parameters = {p.get("name"): p.get("value") for p in stream.iter("Parameter")}
    first_reply = b""
    async with MediaPeer(http, stream.get("url"), sid, parameters) as peer:  # type: ignore[arg-type]
        try:
            for turn in range(1, turns + 1):
                await peer.until(echoed(turn), 60)  # the last prompt has played
                spoken = await peer.say(speech)
                await peer.until(marked(turn + 1), 30)
                _, frames = peer.prompts()[turn]
                reply = b"".join(a.audio for a in frames)
                first_reply = first_reply or reply
                results.responses.append(frames[0].at - spoken)
                results.turns += 1
                results.right += expected_reply is None or reply == expected_reply
            await peer.stop()
            await peer.until(lambda p: p.closed, 10)
        except TimeoutError:
            results.failures.append(f"call {number} timed out: {peer.kinds()[-5:]}")
    results.gaps.extend(prompt_gaps(peer))
    results.failures.extend(peer.problems)
    return first_reply


async def level(service: Service, calls: int, speech: bytes, turns: int, expected: bytes, first: int) -> dict:
    results = Results()
    idle_rss, peak_rss = service.rss_mb(), 0.0
    cpu0, wall0 = service.cpu_s(), time.monotonic()

    async def staggered(i: int) -> None:
        await asyncio.sleep(i / calls)  # calls come in over one second
        await one_call(http, service.url, first + i, speech, turns, expected, results)

    gc.collect()
    gc.disable()  # the callers' own garbage collection would show as gaps; the service's still does
    async with aiohttp.ClientSession() as http:
        running = asyncio.gather(*(staggered(i) for i in range(calls)))
        lag = 0.0  # this process's own lateness: arrival gaps include it
        while not running.done():
            peak_rss = max(peak_rss, service.rss_mb())
            for _ in range(25):
                due = time.monotonic() + 0.01
                await asyncio.sleep(0.01)
                lag = max(lag, time.monotonic() - due)
        await running
    gc.enable()
    cpu = (service.cpu_s() - cpu0) / (time.monotonic() - wall0)
    return {"calls": calls, "results": results, "cpu": cpu, "rss_per_call": (peak_rss - idle_rss) / calls,
            "lag": lag}


def report(row: dict) -> bool:
    r: Results = row["results"]
    gaps, responses = r.gaps or [0.0], r.responses or [float("inf")]
    met = (max(gaps) <= GAP_GOAL_S and pct(responses, 95) <= RESPONSE_GOAL_S and r.right == r.turns
           and r.turns and not r.failures)
    print(f"{row['calls']:>5} {max(gaps) * 1000:8.1f} {pct(gaps, 99) * 1000:8.1f}"
          f" {statistics.median(responses) * 1000:9.0f} {pct(responses, 95) * 1000:9.0f}"
          f" {r.right:>4}/{r.turns:<4} {row['cpu'] * 100:6.0f}% {row['lag'] * 1000:7.1f}"
          f" {row['rss_per_call']:8.2f}   {'met' if met else 'missed'}")
    for failure in r.failures[:3]:
        print(f"      {failure}")
    return bool(met)


# --- baselines ------------------------------------------------------------------------------------------------


def recogniser_alone(speech: bytes, runs: int = 8) -> tuple[float, float]:
    """PocketSphinx on the same utterance in this process: median decode seconds, and the real-time factor."""
    recognizer = PocketSphinxRecognizer()
    pcm = Pcm(g711.ulaw_to_pcm16(speech), 8000)
    hints = [o["title"] for o in MENU["options"]]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        text = recognizer.transcribe(pcm, hints).text
        times.append(time.perf_counter() - started)
    assert text == PHRASE, text
    decode = statistics.median(times)
    return decode, decode / pcm.duration_s


async def pacing_alone(streams: int, shared: bool, seconds: float = 3.0) -> tuple[float, float, float]:
    """`streams` sockets on loopback each sent `seconds` of audio by the playout: max gap, p99 gap (s), and
    this process's CPU seconds per second (server and clients together, the same for both arrangements)."""
    shared_ticker = Ticker()
    tickers: list[Ticker] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        ticker = shared_ticker if shared else Ticker()
        if not shared:
            tickers.append(ticker)
            tasks.append(asyncio.create_task(ticker.run()))
        await Playout(ws, "MZ" + "0" * 32, ticker, request.transport).play(1, b"\xff" * round(seconds * 8000))
        async for _ in ws:
            pass
        return ws

    async def client(url: str) -> list[float]:
        arrivals = []
        async with http.ws_connect(url) as ws:
            async for msg in ws:
                if '"media"' not in msg.data:
                    break
                arrivals.append(time.monotonic())
        return [b - a for a, b in itertools.pairwise(arrivals)]

    tasks: list[asyncio.Task[None]] = [asyncio.create_task(shared_ticker.run())] if shared else []
    app = web.Application()
    app.router.add_get("/", handler)
    async with serving_app(app) as url, aiohttp.ClientSession() as http:
        cpu0, wall0 = time.process_time(), time.monotonic()
        gaps = [g for gs in await asyncio.gather(*(client(url) for _ in range(streams))) for g in gs]
        cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    for task in tasks:
        task.cancel()
    return max(gaps), pct(gaps, 99), cpu


@asynccontextmanager
async def serving_app(app: web.Application) -> AsyncIterator[str]:
    """`app` on 127.0.0.1, any free port; yields its ws:// URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"ws://{host}:{port}/"
    finally:
        await runner.cleanup()


# --- the run -----------------------------------------------------------------------------------------------------


async def main_async(levels: list[int], turns: int, speech: bytes) -> None:
    print("Pacing alone (loopback, silence prompts of 3 s): max gap / p99 gap / CPU of this process")
    for streams in (10, 40):
        for shared in (True, False):
            worst, p99, cpu = await pacing_alone(streams, shared)
            print(f"  {streams:>3} streams, {'one shared ticker  ' if shared else 'a ticker task each '}"
                  f" {worst * 1000:6.1f} ms {p99 * 1000:6.1f} ms   {cpu * 100:5.1f}% of a core")

    sim = Simulator(SimulatorConfig(client_secret=generate_secret(), rate_limit_per_minute=10_000), BOT)
    async with serving(sim) as bot_url:
        service = await asyncio.to_thread(Service, bot_url, sim.config)
        try:
            async with aiohttp.ClientSession() as http:  # warm-up: decoders, prompts rendered once
                expected = await one_call(http, service.url, 0, speech, 1, None, Results())
            print(f"\nService: {service.url}, {len(service.pids()) - 1} child processes "
                  "(recogniser and synthesizer workers), "
                  f"idle RSS {service.rss_mb():.0f} MB; {turns} spoken turns per call, calls staggered over 1 s")
            print("calls  gap max  gap p99  resp p50  resp p95  right       CPU  peer lag  MB/call   goals")
            capacity, first = 0, 1000
            for calls in levels:
                row = await level(service, calls, speech, turns, expected, first)
                first += calls
                if report(row) and calls > capacity:
                    capacity = calls
        finally:
            service.stop()
    print(f"capacity: {capacity} calls met every goal (gaps <= {GAP_GOAL_S * 1000:.0f} ms, response p95 <= "
          f"{RESPONSE_GOAL_S * 1000:.0f} ms, every reply right); goal >= {6 * (os.cpu_count() or 2)} "
          f"(6 per core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="10,12,24,40", help="numbers of simultaneous calls, comma-separated")
    parser.add_argument("--turns", type=int, default=2, help="spoken turns per call")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as folder:
        speech = caller_audio(Path(folder))
    decode, rtf = recogniser_alone(speech)
    seconds = len(speech) / 8000
    print(f"Baseline, the recogniser alone: {decode * 1000:.0f} ms per {seconds:.2f} s utterance (real-time factor "
          f"{rtf:.3f}); a reply can come no sooner than 500 ms end-of-speech silence + {decode * 1000:.0f} ms.")
    asyncio.run(main_async([int(n) for n in args.calls.split(",")], args.turns, speech))


if __name__ == "__main__":
    main()

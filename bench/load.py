"""Load, soak and memory (issue 17): `kore-voice serve` on a real redis-server, loopback only.

    .venv/bin/python bench/load.py [--soak 1000] [--concurrent 10] [--instances 1,2] [--levels 2,4,6,...]
                                   [--warm-up 50] [--engine whisper|pocketsphinx] [--no-redis]
                                   [--turns 3] [--max-seconds 5400]

With no mode given it runs all three with the issue's numbers:
- `--soak N`: N sequential REST calls, each a spoken turn (its reply audio fetched as μ-law, as a phone
  system plays it) and a digit turn (key 1 of the bot's menu), then DELETE. RSS of the service before
  and after (after `--warm-up` calls: decoders loaded, prompts cached, allocator settled) and its drift (goal
  <= 5 MB after 1,000 calls); errors and lost turns (a turn the bot did not receive or answer; goal 0);
  per-stage latencies from each turn's Server-Timing; CPU per call; Redis commands per call.
- `--concurrent N`: N simultaneous real-time streaming calls (Twilio Media Streams, bench/capacity.py's
  callers and scenario): memory per live call = (peak RSS - idle RSS) / N (goal <= 20 MB), CPU per call,
  reply latency, frame gaps, Redis commands per call-minute (goal: a handful, beyond the instance's own
  heartbeat and bus reads, shown apart).
- `--instances 1,2`: one, then two `serve` processes on the same Redis and the same cores, calls spread
  over them (call i to instance i mod k); the number of calls rises through `--levels` until a level
  misses p95 reply <= 1.5 s, no frame gap > 40 ms, no reply lost: the most each setup holds.

The bot is the Kore.ai simulator in this process (bench/capacity.py's scripts). Engines as users run
them: Whisper tiny.en by default (KORE_VOICE_ASR=auto), or PocketSphinx on the menu scenario. Every
phase stops starting new calls once `--max-seconds` have passed since the start.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis.asyncio
from capacity import (
    FREE,
    GAP_GOAL_S,
    GRAMMAR,
    Results,
    Scenario,
    Service,
    machine,
    one_call,
    pct,
    script_of,
    utterances,
)
from door_callers import Twilio
from prometheus_client.parser import text_string_to_metric_families

from adapter.conversation.store import state_key
from adapter.doors.rest_calls import ENDED_CALLS_KEPT
from adapter.kore.simulator.app import Simulator
from adapter.kore.simulator.config import SimulatorConfig, generate_secret
from adapter.kore.simulator.embedded import serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cluster.redis_server import redis_server  # noqa: E402  (the tests' own redis-server, in a temp dir)

REPLY_GOAL_S = 1.5  # p95, for a level to be "held"
DRIFT_GOAL_MB, LIVE_CALL_GOAL_MB = 5.0, 20.0
IDLE_S = 10.0  # how long an idle instance's own Redis traffic is measured
REDIS_COMMANDS = "kore_voice_redis_commands_total"
STAGE = "kore_voice_stage_seconds"
MENU_REPLY = "Ten dollars."  # what bench/capacity.py's menu bot (GRAMMAR) answers to "check balance" and key 1


# --- what the service reports ------------------------------------------------------------------------------


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the service's /metrics: (name, labels) -> value."""
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def since(after: dict[tuple[str, tuple], float], before: dict[tuple[str, tuple], float]) -> dict:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def redis_commands(delta: dict[tuple[str, tuple], float]) -> float:
    return delta.get((REDIS_COMMANDS, ()), 0.0)


def stage_quantile(delta: dict[tuple[str, tuple], float], stage: str, q: float) -> float | None:
    """The histogram bucket bound under which a fraction `q` of the stage's times fell (None: no times)."""
    buckets = sorted((float(dict(labels)["le"]), count) for (name, labels), count in delta.items()
                     if name == f"{STAGE}_bucket" and dict(labels)["stage"] == stage)
    total = buckets[-1][1] if buckets else 0.0
    return next((bound for bound, count in buckets if count >= q * total), None) if total else None


def stage_lines(delta: dict[tuple[str, tuple], float]) -> str:
    """Per-stage p50/p95 from /metrics' histograms (bucket bounds: 'at most')."""

    def ms(value: float | None) -> str:
        return "-" if value is None else "inf" if value == float("inf") else f"{value * 1000:.0f}"

    parts = [f"{stage} <= {ms(stage_quantile(delta, stage, 0.5))}/{ms(stage_quantile(delta, stage, 0.95))}"
             for stage in ("decode", "recognise", "bot", "synthesis", "total") if stage_quantile(delta, stage, 1)]
    return "stage p50/p95 ms (histogram bounds): " + ", ".join(parts)


def rss_mb(service: Service) -> tuple[float, float]:
    """The service's RSS: its main process, and with its worker processes."""
    total = 0.0
    for pid in service.pids():
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024
    return service.rss_mb(), total


# --- set-up --------------------------------------------------------------------------------------------------


@dataclass
class Setup:
    scenario: Scenario
    sim: Simulator
    bot_url: str
    redis_url: str | None
    deadline: float
    engine_label: str
    next_number: int = 1000

    def start(self, count: int) -> list[Service]:
        extra = Twilio().env() | {"KORE_VOICE_DRAIN_S": "0"}  # a call left live at the end is closed at once
        extra |= {"KORE_VOICE_REDIS_URL": self.redis_url} if self.redis_url else {}
        return [Service(self.bot_url, self.sim.config, self.scenario.engine, extra) for _ in range(count)]

    def numbers(self, count: int) -> int:
        """The first of `count` call numbers not used yet in this run."""
        first, self.next_number = self.next_number, self.next_number + count
        return first

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline


@asynccontextmanager
async def setup(scenario: Scenario, use_redis: bool, deadline: float, label: str) -> AsyncIterator[Setup]:
    sim = Simulator(SimulatorConfig(client_secret=generate_secret(), rate_limit_per_minute=1_000_000), scenario.bot)
    async with AsyncExitStack() as stack:
        bot_url = await stack.enter_async_context(serving(sim))
        redis_url = None
        if use_redis:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            redis_url = (await stack.enter_async_context(redis_server(folder))).url
        yield Setup(scenario, sim, bot_url, redis_url, deadline, label)


@asynccontextmanager
async def started(run: Setup, count: int) -> AsyncIterator[list[Service]]:
    services = await asyncio.to_thread(run.start, count)
    try:
        yield services
    finally:
        for service in services:  # off the loop: the bot it closes calls with is this process's
            await asyncio.to_thread(service.stop)


async def idle_redis_per_minute(http: aiohttp.ClientSession, service: Service) -> float:
    """Redis commands an idle instance sends per minute of its own (lease heartbeat, bus reads)."""
    before = await metrics(http, service.url)
    await asyncio.sleep(IDLE_S)  # a measuring window, not a wait for behaviour
    return redis_commands(since(await metrics(http, service.url), before)) * 60 / IDLE_S


async def call_states_left(url: str) -> int:
    """Calls whose state is still in Redis (an ended call leaves none)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        return len([key async for key in client.scan_iter(state_key("*"))])
    finally:
        await client.aclose()


# --- soak: sequential REST calls ----------------------------------------------------------------------------


@dataclass
class Soak:
    calls: int = 0
    turns: int = 0
    lost: int = 0
    received: int = 0  # turns the bot received
    wrong: int = 0  # a turn answered, but not as the words said should be (a misrecognition)
    errors: list[str] = field(default_factory=list)
    # (turn kind, stage) -> ms: Server-Timing's stages, and "caller": turn posted -> answer and reply audio read
    stages: dict[tuple[str, str], list[float]] = field(default_factory=dict)


def timing(header: str) -> dict[str, float]:
    """`Server-Timing: decode;dur=1.2, recognise;dur=300.5` as {stage: ms}."""
    return {name.strip(): float(dur) for name, _, dur in (item.partition(";dur=") for item in header.split(","))}


async def rest_call(http: aiohttp.ClientSession, speech: bytes, soak: Soak) -> None:
    """One REST call: welcome, a spoken turn (reply audio fetched as μ-law), key 1, hang-up."""
    async with http.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000"}) as resp:
        if resp.status != 201:
            soak.errors.append(f"create: {resp.status} {await resp.text()}")
            return
        call = (await resp.json())["id"]
    soak.calls += 1
    turns = [("speech", {"Content-Type": "audio/basic"}, speech),
             ("digit", {"Content-Type": "application/json"}, b'{"digits": "1"}')]
    for kind, headers, body in turns:
        soak.turns += 1
        started = time.perf_counter()
        async with http.post(f"/v1/calls/{call}/turns", data=body, headers=headers) as resp:
            answer = await resp.json() if resp.status == 200 else await resp.text()
            stages = timing(resp.headers.get("Server-Timing", ""))
        if resp.status != 200:
            soak.errors.append(f"turn: {resp.status} {answer}")
            soak.lost += 1
            continue
        if answer["audio_url"]:
            async with http.get(answer["audio_url"], headers={"Accept": "audio/basic"}) as audio:
                if audio.status != 200 or not await audio.read():
                    soak.errors.append(f"reply audio: {audio.status}")
        stages["caller"] = (time.perf_counter() - started) * 1000
        for stage, ms in stages.items():
            soak.stages.setdefault((kind, stage), []).append(ms)
        if not answer["bot"]["texts"]:
            soak.lost += 1
        elif MENU_REPLY not in answer["bot"]["texts"]:
            soak.wrong += 1
    async with http.delete(f"/v1/calls/{call}") as resp:
        if resp.status != 204:
            soak.errors.append(f"delete: {resp.status}")


def bot_turns(sim: Simulator) -> int:
    """Caller turns the bot received (text messages; SESSION_CLOSURE is an event, not a turn) since the
    last look; they are then cleared, as the simulator keeps only its latest requests."""
    messages = [r.body.get("message") or {} for r in sim.requests if isinstance(r.body, dict)]
    sim.requests.clear()
    return sum(1 for m in messages if m.get("type") == "text" and m.get("val") != "SESSION_CLOSURE")


async def soak(run: Setup, calls: int, warm_up: int) -> None:
    speech = next(iter(utterances(run.scenario).values()))
    async with started(run, 1) as [service], aiohttp.ClientSession(service.url) as http:
        for _ in range(warm_up):
            await rest_call(http, speech, Soak())
        background = await idle_redis_per_minute(http, service) if run.redis_url else 0.0
        gc.collect()
        bot_turns(run.sim)
        result, metrics0, cpu0 = Soak(), await metrics(http, service.url), service.cpu_s()
        rss0, started_at, samples = rss_mb(service), time.monotonic(), []
        print(f"\n== soak: {calls} sequential REST calls (a spoken turn, its reply audio, key 1, DELETE); "
              f"{run.engine_label}; {'Redis' if run.redis_url else 'no Redis (memory)'}")
        print(f"after {warm_up} warm-up calls: RSS {rss0[0]:.1f} MB (with workers {rss0[1]:.1f} MB)")
        while result.calls < calls and run.time_left():
            await rest_call(http, speech, result)
            result.received += bot_turns(run.sim)
            if result.calls % max(1, calls // 10) == 0:
                samples.append((result.calls, rss_mb(service)[0]))
                print(f"  {result.calls:>5} calls: RSS {samples[-1][1]:.1f} MB")
        wall = time.monotonic() - started_at
        delta, rss1 = since(await metrics(http, service.url), metrics0), rss_mb(service)
        cpu_s = service.cpu_s() - cpu0
        left = await call_states_left(run.redis_url) if run.redis_url else 0  # while the service runs
    if result.calls < calls:
        print(f"STOPPED at --max-seconds after {result.calls} of {calls} calls")
    lost = max(result.lost, result.turns - result.received)  # unanswered, or never reached the bot
    drift = rss1[0] - rss0[0]
    print(f"calls {result.calls}, turns {result.turns} in {wall:.1f} s; errors {len(result.errors)} (goal 0); "
          f"lost turns {lost} (goal 0; the bot received {result.received}); wrong answers {result.wrong}")
    for error in result.errors[:3]:
        print(f"  {error}")
    print(f"RSS {rss0[0]:.1f} -> {rss1[0]:.1f} MB: drift {drift:+.1f} MB (goal <= {DRIFT_GOAL_MB:g}: "
          f"{'met' if drift <= DRIFT_GOAL_MB else 'MISSED'}); with workers {rss1[1] - rss0[1]:+.1f} MB; "
          f"highest sample {max((rss for _, rss in samples), default=rss1[0]):.1f} MB")
    if len(samples) >= 4:  # bounded keeps (the REST door's latest ended calls) fill early; a leak goes on
        (n0, mb0), (n1, mb1) = samples[len(samples) // 2 - 1], samples[-1]
        print(f"growth over the second half (calls {n0}-{n1}): {(mb1 - mb0) / (n1 - n0) * 1000:+.1f} MB per 1,000 "
              f"calls (the REST door keeps at most {ENDED_CALLS_KEPT} ended calls whole)")
    print(f"CPU per call {cpu_s / max(result.calls, 1) * 1000:.0f} ms (service and its workers)")
    print("per stage (Server-Timing; caller: turn posted -> answer and its reply audio read):")
    for (kind, stage), values in sorted(result.stages.items()):
        print(f"  {kind:<6} {stage:<10} p50 {statistics.median(values):7.1f} ms  p95 {pct(values, 95):7.1f} ms  "
              f"p99 {pct(values, 99):7.1f} ms")
    if run.redis_url:
        calls_own = redis_commands(delta) - background * wall / 60
        print(f"Redis commands per call {calls_own / max(result.calls, 1):.1f} (the instance's own apart: "
              f"{background:.0f} per minute idle); {redis_commands(delta):.0f} commands in {wall:.0f} s; "
              f"call states left in Redis {left} (goal 0)")


# --- simultaneous streaming calls ----------------------------------------------------------------------------


@dataclass
class Level:
    calls: int
    results: Results
    wall: float
    call_minutes: float
    cpu_s: float
    rss_per_call: float  # MB, main processes: (peak - idle) / calls
    delta: dict = field(default_factory=dict)  # /metrics, summed over the instances

    def held(self) -> bool:
        r = self.results
        return (len(r.responses) == r.due > 0 and not r.failures and pct(r.responses, 95) <= REPLY_GOAL_S
                and max(r.gaps or [0.0]) <= GAP_GOAL_S)

    def line(self) -> str:
        r, responses = self.results, self.results.responses or [float("inf")]
        return (f"{self.calls:>5} calls: reply p50 {statistics.median(responses) * 1000:.0f} ms, p95 "
                f"{pct(responses, 95) * 1000:.0f} ms; replies {len(r.responses)}/{r.due} (lost "
                f"{r.due - len(r.responses)}); gap max {max(r.gaps or [0.0]) * 1000:.1f} ms; failures "
                f"{len(r.failures)}; CPU {self.cpu_s / self.calls:.2f} s per call ({self.cpu_s / self.wall * 100:.0f}% "
                f"of a core); {'held' if self.held() else 'MISSED'}")


async def streaming(run: Setup, services: Sequence[Service], speech: dict, calls: int, turns: int) -> Level:
    """`calls` simultaneous Twilio Media Stream calls over one second, call i to instance i mod k."""
    door, results, durations, first = Twilio(), Results(), [], run.numbers(calls)
    idle = sum(s.rss_mb() for s in services)
    peak = idle
    async with aiohttp.ClientSession() as http:

        async def call(i: int) -> None:
            await asyncio.sleep(i / calls)  # calls come in over one second
            number = first + i  # a call number (its CallSid) is never used twice: an ended id stays ended
            said = [speech[key] for key in script_of(run.scenario, number, turns)]
            began = time.monotonic()
            try:
                await one_call(door, http, services[i % len(services)].url, number, said, results)
            except (AssertionError, aiohttp.ClientError) as exc:  # refused or cut off: an error, the run goes on
                results.failures.append(f"call {number}: {exc!r}")
            durations.append(time.monotonic() - began)

        before = [await metrics(http, s.url) for s in services]
        cpu0, wall0 = sum(s.cpu_s() for s in services), time.monotonic()
        gc.collect()
        gc.disable()  # the callers' own collections would show as frame gaps
        try:
            running = asyncio.gather(*(call(i) for i in range(calls)))
            while not running.done():
                peak = max(peak, sum(s.rss_mb() for s in services))
                await asyncio.wait([running], timeout=0.25)
            await running
        finally:
            gc.enable()
        wall, cpu_s = time.monotonic() - wall0, sum(s.cpu_s() for s in services) - cpu0
        delta: dict = {}
        for service, old in zip(services, before, strict=True):
            for key, value in since(await metrics(http, service.url), old).items():
                delta[key] = delta.get(key, 0.0) + value
    return Level(calls, results, wall, sum(durations) / 60, cpu_s, (peak - idle) / calls, delta)


async def warm_up(run: Setup, services: Sequence[Service], speech: dict) -> None:
    """A call of two turns on each instance: decoders loaded, prompts rendered once."""
    for i in range(len(services)):
        for failure in (await streaming(run, services[i:i + 1], speech, 1, 2)).results.failures:
            print(f"  warm-up: {failure}")


def streaming_speech(run: Setup) -> dict:
    return utterances(run.scenario, Twilio.sox)


async def concurrent(run: Setup, calls: int, turns: int) -> None:
    speech = streaming_speech(run)
    async with started(run, 1) as services, aiohttp.ClientSession() as http:
        await warm_up(run, services, speech)
        background = await idle_redis_per_minute(http, services[0]) if run.redis_url else 0.0
        print(f"\n== concurrent: {calls} simultaneous streaming calls (Twilio Media Streams, {turns} spoken turns "
              f"each); {run.engine_label}; {'Redis' if run.redis_url else 'no Redis (memory)'}")
        level = await streaming(run, services, speech, calls, turns)
    print(level.line())
    print(f"memory per live call {level.rss_per_call:.2f} MB (goal <= {LIVE_CALL_GOAL_MB:g}: "
          f"{'met' if level.rss_per_call <= LIVE_CALL_GOAL_MB else 'MISSED'}); call-minutes {level.call_minutes:.2f}")
    print(stage_lines(level.delta))
    if run.redis_url:
        per_minute = (redis_commands(level.delta) - background * level.wall / 60) / max(level.call_minutes, 1e-9)
        per_call = (redis_commands(level.delta) - background * level.wall / 60) / calls
        print(f"Redis commands per call-minute {per_minute:.1f}, per call {per_call:.1f} (the instance's own apart: "
              f"{background:.0f} per minute idle); {redis_commands(level.delta):.0f} commands in {level.wall:.0f} s")
    for failure in level.results.failures[:3]:
        print(f"  {failure}")


async def most_held(run: Setup, instances: int, levels: Sequence[int], turns: int,
                    report: Callable[[str], None]) -> int:
    """The most simultaneous calls `instances` processes held, rising through `levels` until one misses."""
    speech, best = streaming_speech(run), 0
    async with started(run, instances) as services:
        await warm_up(run, services, speech)
        for calls in levels:
            if not run.time_left():
                report(f"STOPPED at --max-seconds before {calls} calls")
                break
            level = await streaming(run, services, speech, calls, turns)
            report(level.line() + f"; {stage_lines(level.delta)}")
            for failure in level.results.failures[:3]:
                report(f"  {failure}")
            if not level.held():
                break
            best = calls
    return best


async def instances(run: Setup, counts: Sequence[int], levels: Sequence[int], turns: int) -> None:
    print(f"\n== instances: the most simultaneous streaming calls held (p95 reply <= {REPLY_GOAL_S} s, no gap "
          f"> {GAP_GOAL_S * 1000:.0f} ms, none lost), {turns} spoken turns each; {run.engine_label}; levels {levels}")
    held = {}
    for count in counts:
        print(f"-- {count} instance(s) on one Redis, calls spread over them")
        held[count] = await most_held(run, count, levels, turns, lambda line: print("  " + line))
    print("held: " + ", ".join(f"{count} instance(s) {calls} calls" for count, calls in held.items()))
    if len(held) > 1 and held[counts[0]]:
        print(f"ratio {counts[-1]} / {counts[0]} instances: {held[counts[-1]] / held[counts[0]]:.2f}")


# --- the run ---------------------------------------------------------------------------------------------------


def counts(value: str) -> list[int]:
    return [int(n) for n in value.split(",")]


async def main_async(args: argparse.Namespace) -> None:
    every = args.soak is None and args.concurrent is None and args.instances is None
    scenario = FREE if args.engine == "whisper" else GRAMMAR
    label = scenario.label if scenario is FREE else f"PocketSphinx ({scenario.label})"
    soak_scenario = dataclasses.replace(GRAMMAR, engine=scenario.engine)  # a menu, so key 1 means something
    use_redis, deadline = not args.no_redis, time.monotonic() + args.max_seconds
    if every or args.soak:
        soak_label = f"{'Whisper tiny.en' if args.engine == 'whisper' else 'PocketSphinx'}, 'check balance'"
        async with setup(soak_scenario, use_redis, deadline, soak_label) as run:
            await soak(run, args.soak or 1000, args.warm_up)
    if every or args.concurrent:
        async with setup(scenario, use_redis, deadline, label) as run:
            await concurrent(run, args.concurrent or 10, args.turns)
    if every or args.instances:
        if args.no_redis:
            sys.exit("--instances needs Redis: two instances share their state there")
        async with setup(scenario, True, deadline, label) as run:
            await instances(run, counts(args.instances or "1,2"), counts(args.levels), args.turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak", type=int, help="sequential REST calls (all modes' default: 1000)")
    parser.add_argument("--warm-up", type=int, default=50, help="REST calls before the soak's first RSS reading")
    parser.add_argument("--concurrent", type=int, help="simultaneous streaming calls (default: 10)")
    parser.add_argument("--instances", help="instance counts to compare, e.g. 1,2 (default)")
    parser.add_argument("--levels", default="2,4,6,8,10,12,14,16,20",
                        help="numbers of simultaneous calls tried with --instances, rising")
    parser.add_argument("--turns", type=int, default=3, help="spoken turns per streaming call")
    parser.add_argument("--engine", choices=("whisper", "pocketsphinx"), default="whisper")
    parser.add_argument("--no-redis", action="store_true", help="shared state in memory (one instance only)")
    parser.add_argument("--max-seconds", type=float, default=5400, help="no new call starts after this")
    args = parser.parse_args()
    print(machine())
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

"""One clock (issue 14): everything that waits runs on the clock `create_app` is given, and nothing else in
adapter/ reads time or sleeps for behaviour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conversation.manual_clock import ManualClock
from doors.twilio.conftest import on_clock

from adapter.config import Settings
from adapter.kore.simulator import Simulator, SimulatorConfig, generate_secret
from adapter.kore.simulator.script import parse_script
from adapter.server import create_app

ADAPTER = Path(__file__).resolve().parents[1] / "adapter"
THE_CLOCK = "calls/clock.py"  # the one place that reads the system's time
# Reading a clock, sleeping, or a timer or timeout on the event loop's own clock.
TIME_USE = re.compile(
    r"\btime\.(?:time|monotonic|perf_counter|process_time|sleep)(?:_ns)?\b|\bfrom time import\b"
    r"|\b(?:loop|get_running_loop\(\)|get_event_loop\(\))\.(?:time|call_later|call_at)\("
    r"|\basyncio\.(?:sleep|wait_for|timeout|timeout_at)\("
    r"|\bdatetime\.(?:now|utcnow|today)\(|\bdate\.today\(")

# What may still use time directly, by file (relative to adapter/) and use, and why it is not behaviour.
ALLOWED: dict[tuple[str, str], str] = {
    ("stage_timing.py", "time.perf_counter"): "stage latencies for /metrics and the log: measured, never waited on",
    ("doors/rest.py", "time.perf_counter"): "a REST turn's stage latencies for /metrics: a measurement",
    ("harness/call_run.py", "time.perf_counter"): "`kore-voice call` reports each turn's latency: a measurement",
    ("commands/transcribe.py", "time.perf_counter"): "`kore-voice transcribe` reports proc_s: a measurement",
    ("speech/recognizer_pool.py", "time.monotonic"): "ASR queue waits and decode times for /metrics, and the "
        "instants that order queued jobs fairly: compared, never waited on",
    ("commands/serve.py", "time.monotonic"): "at most one 'cannot accept' log line per interval: log throttling",
    ("commands/serve.py", "get_running_loop().call_later("): "the listener closes a refused connection after a "
        "linger, below the app (no app clock there): socket handling no call sees",
}
# adapter/testing/: the phone systems' test peers stand in for real networks, which pace, echo and sign in real
# time; any use of time there is the network's, not the service's.
PEERS = "testing/"


def time_uses() -> set[tuple[str, str]]:
    """(file, use) for every direct use of time in adapter/ outside the clock module."""
    found = set()
    for path in sorted(ADAPTER.rglob("*.py")):
        name = path.relative_to(ADAPTER).as_posix()
        if name == THE_CLOCK or name.startswith(PEERS):
            continue
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0]
            found.update((name, use) for use in TIME_USE.findall(code))
    return found


def test_nothing_in_the_adapter_reads_time_or_sleeps_but_the_clock():
    unexplained = time_uses() - ALLOWED.keys()
    assert not unexplained, f"use the app's Clock (adapter/calls/clock.py) instead: {sorted(unexplained)}"


def test_the_allow_list_has_no_stale_entries():
    assert not ALLOWED.keys() - time_uses()


# --- an app on a manual clock waits for nothing real ---------------------------------------------------


SLOW_WELCOME = {
    "welcome": [{"fail": {"status": 503, "times": 1}}, {"say": "One moment."}, {"wait": 1.5},
                {"say": "Welcome to the clock test."}],
    "fallback": [{"say": "Sorry?"}],
}


async def test_an_app_on_a_manual_clock_retries_and_polls_the_bot_on_that_clock(aiohttp_server):
    """The bot's first answer is a 503 (retried after 0.25 s), then a poll id whose rest is ready 1.5 s later
    (polled at 0.5 s: in progress, and 1.0 s after that): 1.75 s of the app's clock, none of it slept."""
    clock = ManualClock()
    config = SimulatorConfig(client_secret=generate_secret())
    simulator = Simulator(config, parse_script(SLOW_WELCOME, "test"), clock=clock)
    bot = await aiohttp_server(simulator.create_app())
    settings = Settings.load(environ={
        "KORE_VOICE_ASR": "pocketsphinx", "KORE_WEBHOOK_URL": str(bot.make_url(f"/chatbot/v2/webhook/{config.bot_id}")),
        "KORE_CLIENT_ID": config.client_id, "KORE_CLIENT_SECRET": config.client_secret.reveal()})
    server = TestServer(create_app(settings, clock=clock))
    async with TestClient(server) as client:
        began = clock.now()
        # A horizon short of the conversation's own timers (the filler at 2 s): only the bot's waits move it.
        resp = await on_clock(clock, client.post("/v1/calls", json={"from": "+15551230000", "to": "+15559870000"}),
                              horizon_s=1.9)
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["welcome"]["texts"] == ["One moment.", "Welcome to the clock test."]
        assert clock.now() - began == pytest.approx(0.25 + 0.5 + 1.0)
    statuses = [(r.method, r.status, (r.answer or {}).get("status")) for r in simulator.requests]
    assert statuses[:4] == [("POST", 503, None), ("POST", 200, None), ("GET", 200, "Inprogress"), ("GET", 200, None)]

"""The service's Prometheus metrics: calls, turns, errors, per-stage latency and the recognizer's queue,
one registry per app.

A registry per app (not prometheus-client's global one) so several apps in one process, as in tests,
never count into each other.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from adapter.calls.events import BotFailed, Heard, OutputEvent

#: The stages of a turn, in the order they happen; `total` is from request received to reply ready.
STAGES = ("decode", "recognise-wait", "recognise", "bot", "synthesis", "total")
# From a cached prompt (milliseconds) to a slow bot near Kore.ai's 15 s limit.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Counters and histograms of one app; `exposition()` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls_started = Counter("kore_voice_calls_started", "Calls started, by door.", ["door"],
                                     registry=self.registry)
        self.calls_active = Gauge("kore_voice_calls_active", "Calls in progress, by door.", ["door"],
                                  registry=self.registry)
        self.turns = Counter("kore_voice_turns", "Caller turns sent to the bot, by door and input (speech, dtmf).",
                             ["door", "input"], registry=self.registry)
        self.request_errors = Counter("kore_voice_request_errors", "Requests answered with an error, by code.",
                                      ["code"], registry=self.registry)
        self.connections_refused = Counter("kore_voice_connections_refused",
                                           "Connections refused with 503: KORE_VOICE_MAX_CONNECTIONS were open.",
                                           registry=self.registry)
        self.accept_failures = Counter("kore_voice_accept_failures",
                                       "accept() failures for lack of file descriptors or memory.",
                                       registry=self.registry)
        self.bot_failures = Counter("kore_voice_bot_failures", "Bot requests that failed, by kind (error, timeout).",
                                    ["kind"], registry=self.registry)
        self.stage_seconds = Histogram("kore_voice_stage_seconds", "Time spent per turn stage.", ["stage"],
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.asr_queue_depth = Gauge("kore_voice_asr_queue_depth",
                                     "Recognizer jobs waiting for a worker.", registry=self.registry)
        self.asr_queue_wait_seconds = Histogram("kore_voice_asr_queue_wait_seconds",
                                                "Time recognizer jobs waited for a worker, by kind "
                                                "(final, speculative).", ["kind"],
                                                buckets=LATENCY_BUCKETS, registry=self.registry)
        self.asr_job_seconds = Histogram("kore_voice_asr_job_seconds", "Time a recognizer job ran on its worker.",
                                         buckets=LATENCY_BUCKETS, registry=self.registry)
        self.asr_failures = Counter("kore_voice_asr_failures", "Recognizer jobs that raised (heard as nothing).",
                                    registry=self.registry)
        for kind in ("final", "speculative"):
            self.asr_queue_wait_seconds.labels(kind)
        for stage in STAGES:  # every stage shows from the start, at zero
            self.stage_seconds.labels(stage)
        for kind in ("error", "timeout"):
            self.bot_failures.labels(kind)

    def observe(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(seconds)

    def saw(self, door: str, event: OutputEvent) -> None:
        """Count what a door read from its conversation: finished caller turns and bot failures."""
        if isinstance(event, Heard) and event.final:
            self.turns.labels(door, event.input).inc()
        elif isinstance(event, BotFailed):
            self.bot_failures.labels("timeout" if event.timeout else "error").inc()

    # the recognizer pool's reports (adapter.speech.recognizer_pool.PoolMetrics)
    def asr_waiting(self, depth: int) -> None:
        self.asr_queue_depth.set(depth)

    def asr_started(self, waited_s: float, speculative: bool) -> None:
        self.asr_queue_wait_seconds.labels("speculative" if speculative else "final").observe(waited_s)

    def asr_finished(self, seconds: float, failed: bool) -> None:
        self.asr_job_seconds.observe(seconds)
        if failed:
            self.asr_failures.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

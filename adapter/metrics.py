"""The service's Prometheus metrics: calls, turns, errors, per-stage latency and the recognizer's queue,
one registry per app.

A registry per app (not prometheus-client's global one) so several apps in one process, as in tests,
never count into each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from adapter.conversation.events import BotFailed, Heard, OutputEvent

#: The stages of a turn, in the order they happen; `total` is from request received to reply ready.
STAGES = ("decode", "recognise", "bot", "synthesis", "total")
# From a cached prompt (milliseconds) to a slow bot near Kore.ai's 15 s limit.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST
T = TypeVar("T")


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
                                     "Recognizer jobs waiting for a thread.", registry=self.registry)
        self.asr_queue_wait_seconds = Histogram("kore_voice_asr_queue_wait_seconds",
                                                "Time recognizer jobs waited for a thread.",
                                                buckets=LATENCY_BUCKETS, registry=self.registry)
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MeteredExecutor(ThreadPoolExecutor):
    """The recognizer's bounded thread pool, reporting how many jobs wait for a thread and how long."""

    def __init__(self, max_workers: int, metrics: Metrics) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="asr")
        self._metrics = metrics

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        queued = time.monotonic()
        self._metrics.asr_queue_depth.inc()

        def started() -> T:
            self._metrics.asr_queue_depth.dec()
            self._metrics.asr_queue_wait_seconds.observe(time.monotonic() - queued)
            return fn(*args, **kwargs)

        return super().submit(started)

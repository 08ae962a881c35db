"""Where a call's turn spends its time: recogniser, bot and synthesizer timed at the `Services` seams.

Each call gets its own wrapped `Services`, so a request/response door reads exactly its own turn's
stages (one turn at a time per call) while every stage also goes to the app's histograms. The
conversation itself knows nothing of this.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from adapter.audio.pcm import Pcm
from adapter.calls.bot import BotPort
from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.replies import BotReply
from adapter.conversation.services import Services
from adapter.speech.recognizer_pool import RecognizerPool

T = TypeVar("T")


class StageTimes:
    """Seconds per stage since the last `take()`; every measurement is also passed to `observe`.

    The recogniser runs in an executor thread, hence the lock.
    """

    def __init__(self, observe: Callable[[str, float], None] = lambda stage, seconds: None) -> None:
        self._observe = observe
        self._lock = threading.Lock()
        self._times: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._times[stage] = self._times.get(stage, 0.0) + seconds
        self._observe(stage, seconds)

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)

    def take(self) -> dict[str, float]:
        """The stages measured since the last call, and start again."""
        with self._lock:
            times, self._times = self._times, {}
        return times


class _TimedStream:
    """A recogniser stream whose `finish` (the wait after the caller stopped) is the recognise stage."""

    def __init__(self, stream: Any, times: StageTimes) -> None:
        self._stream = stream
        self._times = times

    def accept(self, data: bytes) -> Any:
        return self._stream.accept(data)

    def partial(self) -> str:
        return self._stream.partial()

    def finish(self) -> Any:
        with self._times.measure("recognise"):
            return self._stream.finish()


class TimedRecognizer:
    """The process's recogniser, timed for one call."""

    def __init__(self, recognizer: Any, times: StageTimes) -> None:
        self._recognizer = recognizer
        self._times = times
        self.name = recognizer.name
        self.whole_utterance = recognizer.whole_utterance

    def transcribe(self, pcm: Pcm, hints: Sequence[str] | None = None) -> Any:
        with self._times.measure("recognise"):
            return self._recognizer.transcribe(pcm, hints)

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> _TimedStream:
        return _TimedStream(self._recognizer.open_stream(rate, hints), self._times)


class TimedBot:
    """The Kore.ai client, timed for one call: the round trip is the wait for a turn's first answer."""

    def __init__(self, bot: BotPort, times: StageTimes) -> None:
        self._bot = bot
        self._times = times

    def stream_start_call(self, call: CallInfo) -> AsyncIterator[BotReply]:
        return self._timed(self._bot.stream_start_call(call))

    def stream_text(self, call: CallInfo, text: str, meta: InputMeta) -> AsyncIterator[BotReply]:
        return self._timed(self._bot.stream_text(call, text, meta))

    async def end_call(self, call: CallInfo) -> None:
        await self._bot.end_call(call)

    def resume_call(self, call: CallInfo) -> None:
        self._bot.resume_call(call)

    async def _timed(self, replies: AsyncIterator[BotReply]) -> AsyncIterator[BotReply]:
        started: float | None = time.perf_counter()
        async for reply in replies:
            if started is not None:
                self._times.add("bot", time.perf_counter() - started)
                started = None
            yield reply


class TimedSynthesizer:
    """The synthesizer, timed for one call (a cached prompt costs next to nothing, as it should)."""

    def __init__(self, synthesizer: Any, times: StageTimes) -> None:
        self._synthesizer = synthesizer
        self._times = times

    async def render(self, text: str, fmt: str = "wav16k", voice: str | None = None) -> bytes:
        with self._times.measure("synthesis"):
            return await self._synthesizer.render(text, fmt, voice)


class TimedPool:
    """The recogniser pool, timed for one call: how long each of its jobs waited for a free worker is the
    `recognise-wait` stage, apart from `recognise` (the decode itself), so a turn that queued behind other
    calls shows recogniser capacity, not time the service added. A speculative job's wait is left out: it
    waits on purpose, for a worker nobody else needs."""

    def __init__(self, pool: RecognizerPool, times: StageTimes) -> None:
        self._pool = pool
        self._times = times

    async def run(self, call: str, fn: Callable[..., T], *args: Any, speculative: bool = False) -> T:
        submitted = time.perf_counter()

        def started(*job_args: Any) -> T:
            if not speculative:
                self._times.add("recognise-wait", time.perf_counter() - submitted)
            return fn(*job_args)

        return await self._pool.run(call, started, *args, speculative=speculative)

    def promote(self, call: str) -> None:
        self._pool.promote(call)

    def drop(self, call: str) -> int:
        return self._pool.drop(call)


def timed_services(services: Services, times: StageTimes) -> Services:
    """`services` for one call, with recogniser (and its pool), bot and synthesizer reporting to `times`."""
    return dataclasses.replace(
        services,
        recognizer_pool=TimedPool(services.recognizer_pool, times),  # type: ignore[arg-type]
        recognizer=TimedRecognizer(services.recognizer, times),  # type: ignore[arg-type]
        bot=TimedBot(services.bot, times),
        synthesizer=TimedSynthesizer(services.synthesizer, times),  # type: ignore[arg-type]
    )

"""Stage times per turn, taken at the Services seams: what each stage took, and nothing twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

from adapter.audio.pcm import Pcm
from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.replies import BotReply
from adapter.speech.recognizer import SILENCE, Transcript
from adapter.speech.recognizer_pool import RecognizerPool
from adapter.stage_timing import StageTimes, TimedBot, TimedPool, TimedRecognizer, TimedSynthesizer

CALL = CallInfo("call-1")


class Bot:
    async def _batches(self, n: int) -> AsyncIterator[BotReply]:
        for i in range(n):
            yield BotReply(texts=(f"batch {i}",))

    def stream_start_call(self, call: CallInfo) -> AsyncIterator[BotReply]:
        return self._batches(1)

    def stream_text(self, call: CallInfo, text: str, meta: InputMeta) -> AsyncIterator[BotReply]:
        return self._batches(3)

    async def end_call(self, call: CallInfo) -> None:
        self.ended = call


class Engine:
    name, sample_rate, whole_utterance = "fake", 16000, True

    def transcribe(self, pcm: Pcm, hints=None) -> Transcript:
        return SILENCE


class Synth:
    async def render(self, text: str, fmt: str = "wav16k", voice: str | None = None) -> bytes:
        return f"{text}:{fmt}".encode()


async def test_the_bot_round_trip_is_the_wait_for_the_first_batch():
    observed: list[str] = []
    times = StageTimes(lambda stage, seconds: observed.append(stage))
    bot = TimedBot(Bot(), times)
    replies = [r.texts async for r in bot.stream_text(CALL, "hi", InputMeta())]
    assert replies == [("batch 0",), ("batch 1",), ("batch 2",)]
    assert observed == ["bot"] and set(times.take()) == {"bot"}
    await bot.end_call(CALL)
    assert times.take() == {} and observed == ["bot"]


async def test_recognise_and_synthesis_add_up_until_taken():
    times = StageTimes()
    recognizer, synth = TimedRecognizer(Engine(), times), TimedSynthesizer(Synth(), times)
    assert recognizer.name == "fake" and recognizer.transcribe(Pcm(b"", 8000)) is SILENCE
    assert await synth.render("hello", "ulaw8k") == b"hello:ulaw8k"
    await synth.render("again")
    with times.measure("decode"):
        pass
    taken = times.take()
    assert set(taken) == {"recognise", "synthesis", "decode"} and all(v >= 0 for v in taken.values())
    assert times.take() == {}


async def test_a_job_waiting_for_a_free_recogniser_is_the_recognise_wait_stage_not_recognise():
    pool, times = RecognizerPool(1), StageTimes()
    timed = TimedPool(pool, times)
    gate = threading.Event()
    first = asyncio.create_task(timed.run("call-a", gate.wait, 10))
    second = asyncio.create_task(timed.run("call-b", lambda: "decoded"))
    while not pool.waiting:  # call-b's job is queued behind call-a's
        await asyncio.sleep(0)
    queued = time.perf_counter()
    for _ in range(10):  # call-b keeps waiting while call-a's job runs
        await asyncio.sleep(0)
    waited = time.perf_counter() - queued
    gate.set()
    assert (await first, await second) == (True, "decoded")
    taken = times.take()
    assert set(taken) == {"recognise-wait"} and taken["recognise-wait"] >= waited > 0
    spare = await timed.run("call-c", lambda: "early", speculative=True)
    assert spare == "early" and times.take() == {}
    pool.shutdown()

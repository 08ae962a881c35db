"""How a live call's speech reaches the recognizer: decoded early at a pause and reused when the caller
has finished, decoded again when they go on; a recognizer that fails is a no-match, never silence for
ever; a caller sending audio faster than real time is hung up; an ended call's decodes are dropped.

The recognizer is the session's real PocketSphinx (worker processes), wrapped to record its calls.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

import numpy as np

from adapter.audio.pcm import Pcm
from adapter.calls.events import AudioIn, HangUp, Heard, Play
from adapter.speech.recognizer import Recognizer, RecognizerStream, Transcript
from adapter.speech.recognizer_pool import RecognizerPool

from .conftest import CallDriver
from .test_call import played, welcome


class Recording(Recognizer):
    """The real recognizer, with every whole-utterance decode's audio length written down."""

    whole_utterance = True

    def __init__(self, engine: Recognizer, fail: bool = False) -> None:
        self.engine, self.fail = engine, fail
        self.name, self.sample_rate = engine.name, engine.sample_rate
        self.decoded: list[float] = []

    def transcribe(self, pcm: Pcm, hints: Sequence[str] | None = None) -> Transcript:
        self.decoded.append(pcm.duration_s)
        if self.fail:
            raise RuntimeError("the decoder crashed")
        return self.engine.transcribe(pcm, hints)

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        raise RuntimeError("the decoder crashed")


def edge_to_edge(pcm: Pcm) -> Pcm:
    """The speech without espeak-ng's own silence around it, so a test's pauses are the pauses."""
    samples = pcm.samples()
    voiced = np.flatnonzero(np.abs(samples) > 300)
    return Pcm(samples[voiced[0]:voiced[-1]].tobytes(), pcm.rate)


async def until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} did not happen")


async def test_an_utterance_decoded_at_a_pause_is_answered_without_a_second_decode(start_call, recognizer, say):
    ears = Recording(recognizer)
    call: CallDriver = await start_call(recognizer=ears)
    await welcome(call)
    await call.speak(edge_to_edge(say("check balance")) + Pcm.silence(0.3, 8000))   # a pause, not yet the end
    await until(lambda: ears.decoded, "the early decode")
    await call.speak(Pcm.silence(0.6, 8000))                           # nothing more: the end
    heard = await call.next(Heard)
    assert heard.final and heard.text == "check balance"
    assert "$2,450.18" in (await played(call)).text
    assert len(ears.decoded) == 1                                      # the early decode was the answer


async def test_speech_after_the_pause_makes_the_early_decode_void(start_call, recognizer, say):
    ears = Recording(recognizer)
    call: CallDriver = await start_call(recognizer=ears)
    await welcome(call)
    first = edge_to_edge(say("check"))
    await call.speak(first + Pcm.silence(0.3, 8000))
    await until(lambda: ears.decoded, "the early decode")
    second = edge_to_edge(say("balance"))
    await call.speak(second + Pcm.silence(0.6, 8000))
    heard = await call.next(Heard)
    assert heard.text == "check balance"                               # not "check"
    assert len(ears.decoded) >= 2 and ears.decoded[-1] > first.duration_s + second.duration_s


async def test_without_early_decodes_an_utterance_is_decoded_once_at_its_end(start_call, recognizer, say):
    ears = Recording(recognizer)
    call: CallDriver = await start_call(recognizer=ears, speculate_ms=0)
    await welcome(call)
    await call.speak(edge_to_edge(say("check balance")) + Pcm.silence(0.3, 8000))
    await asyncio.sleep(0.3)
    assert ears.decoded == []
    await call.speak(Pcm.silence(0.6, 8000))
    assert (await call.next(Heard)).text == "check balance" and len(ears.decoded) == 1


async def test_a_recognizer_that_fails_is_a_no_match_logged_with_the_call(start_call, recognizer, say, caplog):
    for whole in (True, False):
        broken = Recording(recognizer, fail=True)
        broken.whole_utterance = whole                                   # a streaming engine fails at open
        call: CallDriver = await start_call(recognizer=broken)
        await welcome(call)
        with caplog.at_level(logging.WARNING):
            await call.speak(say("check balance") + Pcm.silence(1.0, 8000))
            sorry = await call.next(Play)
        assert sorry.text == "Sorry, I didn't catch that." and not call.conversation.closed
        assert any(call.conversation.call.user_id in r.getMessage() and "crashed" in r.getMessage()
                   for r in caplog.records)


async def test_audio_faster_than_real_time_hangs_up_the_call_with_a_reason(start_call):
    call: CallDriver = await start_call(max_audio_ahead_s=2.0)
    await welcome(call)
    frame = Pcm.silence(0.02, 8000).data
    for _ in range(50):                                                # 1 s of audio in real time: fine
        call.send(AudioIn(frame))
        call.clock.advance(0.02)
    assert not call.conversation.closed
    for _ in range(150):                                               # 3 s more at once: a flood
        call.send(AudioIn(frame))
    assert (await call.next(HangUp)).reason == "audio faster than real time"
    await asyncio.wait_for(call.conversation.start(), 10)
    assert call.conversation.closed


async def test_an_ended_calls_waiting_decodes_are_dropped(start_call, recognizer, say):
    ears = Recording(recognizer)
    pool = RecognizerPool(1)
    call: CallDriver = await start_call(recognizer=ears, recognizer_pool=pool, speculate_ms=0)
    await welcome(call)
    gate = threading.Event()
    other = asyncio.create_task(pool.run("another call", gate.wait, 10))   # the only worker is busy
    await call.speak(say("check balance") + Pcm.silence(1.0, 8000))
    await until(lambda: pool.waiting == 1, "the decode waiting")
    await call.conversation.hang_up()
    assert pool.waiting == 0
    gate.set()
    await other
    assert ears.decoded == []                                          # never decoded for nobody
    pool.shutdown()

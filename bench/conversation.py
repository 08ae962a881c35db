"""Conversation timing: end of speech -> final transcript, and speech onset -> barge-in (clear).

    .venv/bin/python bench/conversation.py [--n 12] [--engine pocketsphinx|whisper|vosk]

A real call (embedded simulator bot, espeak-ng prompts, the chosen recognizer) with live 8 kHz audio.
- End of speech: the caller's utterance is followed by silence; the endpointer decides after the
  configured silence (500 ms of audio). We time from the moment the frame that completes that
  silence is handed to the conversation until the final transcript event: the time beyond the
  silence (goal p95 <= 150 ms). The recognizer's own decode time for the same utterance, measured
  in the same run, is printed beside it as the baseline.
- Barge-in: while a long prompt plays, speech starts at a known audio time; frames go in at real
  time pace and we time from the speech's first sample to the clear event (goal <= 250 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from adapter.audio.decode import decode_audio
from adapter.audio.pcm import Pcm
from adapter.audio.resample import resample
from adapter.calls.clock import SystemClock
from adapter.calls.events import AudioIn, Clear, Heard, Listening, OutputEvent, Play, PlaybackDone
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.endpointing import Endpointer
from adapter.conversation.services import AudioSpec, Services
from adapter.conversation.store import MemoryStore
from adapter.kore.client import KoreClient
from adapter.kore.settings import KoreSettings
from adapter.kore.simulator.embedded import embedded_bot
from adapter.kore.simulator.script import parse_script
from adapter.speech.engines import load_recognizer
from adapter.speech.settings import AsrSettings, TtsSettings
from adapter.speech.synthesizer import Synthesizer

FRAME = 320  # 20 ms at 8 kHz
HINTS = ["Transfer money", "Check balance"]  # the welcome menu's labels: the conversation's hints
ECHO_BOT = parse_script({
    "name": "Echo",
    "welcome": [{"say": "Welcome. " + "Please listen to this long announcement. " * 8},
                {"menu": {"text": "What would you like?", "options": [
                    {"title": HINTS[0], "payload": "transfer"}, {"title": HINTS[1], "payload": "balance"}]}}],
    "fallback": [{"say": "OK."}], "intents": {},
})


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def speech(text: str, folder: str) -> Pcm:
    wav = Path(folder, "s.wav")
    subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "140", "-w", str(wav), text], check=True)
    pcm = resample(decode_audio(wav.read_bytes()), 8000)
    samples = pcm.samples()
    loud = (abs(samples) > 300).nonzero()[0]
    return Pcm(samples[loud[0]:loud[-1]].tobytes(), 8000)  # edge to edge: we know where speech is


async def next_of(events, kind):
    async for event in events:
        if isinstance(event, kind):
            return event
    raise RuntimeError("the call ended")


async def new_call(services: Services) -> tuple[Conversation, AsyncIterator[OutputEvent], Play]:
    """A live 8 kHz call whose welcome prompt has been sent (and is still "playing")."""
    call = Conversation(CallInfo.new("bench"), services, AudioSpec(8000, "ulaw8k", live=True, reports_playback=True))
    call.start()
    events = call.events()
    welcome = await next_of(events, Play)
    await next_of(events, Listening)
    return call, events, welcome


async def run(n: int, engine: str) -> None:
    recognizer = load_recognizer(AsrSettings(engine=engine))
    with tempfile.TemporaryDirectory() as folder:
        utterance = speech("transfer money", folder)
    # The conversation's endpointer is deterministic: find the frame that will end the utterance.
    endpointer = Endpointer(8000)
    tail = utterance.data + Pcm.silence(1.0, 8000).data
    last_frame = next(i for i in range(0, len(tail) // FRAME)
                      if endpointer.feed(tail[i * FRAME:(i + 1) * FRAME]).ended)
    async with Synthesizer(TtsSettings()) as synth, aiohttp.ClientSession() as http, \
            embedded_bot(KoreSettings(), clock := SystemClock(), script=ECHO_BOT) as bot:
        services = Services(recognizer, synth, KoreClient(bot.settings, http, clock), MemoryStore(), clock)
        end_ms, decode_ms, barge_ms = [], [], []
        for _ in range(n):
            call, events, welcome = await new_call(services)
            # barge-in: speech at real-time pace while the welcome is still playing
            audio = Pcm.silence(0.2, 8000) + utterance
            onset = time.perf_counter() + 0.2
            clear_task = asyncio.create_task(next_of(events, Clear))
            for i in range(0, len(audio.data), FRAME):
                call.send(AudioIn(audio.data[i:i + FRAME]))
                await asyncio.sleep(0.02)
                if clear_task.done():
                    break
            await clear_task
            barge_ms.append((time.perf_counter() - onset) * 1000)
            await call.hang_up()
            # end of speech: a fresh call; the prompt has played; speech then exactly 500 ms of silence
            call, events, welcome = await new_call(services)
            call.send(PlaybackDone(welcome.prompt_id))
            data = utterance.data + Pcm.silence(1.0, 8000).data
            frames = [data[i:i + FRAME] for i in range(0, len(data), FRAME)]
            for i, frame in enumerate(frames[:last_frame]):
                call.send(AudioIn(frame))
                if i % 5 == 4:
                    await asyncio.sleep(0.1)  # the recognizer keeps up with the speech, as it would live
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            call.send(AudioIn(frames[last_frame]))  # the frame that completes the end-of-speech silence
            heard = await next_of(events, Heard)
            while not heard.final:
                heard = await next_of(events, Heard)
            end_ms.append((time.perf_counter() - started) * 1000)
            await call.hang_up()
            t = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(None, recognizer.transcribe, utterance, HINTS)
            decode_ms.append((time.perf_counter() - t) * 1000)
    print(f"engine {recognizer.name}, {n} calls, utterance {utterance.duration_s:.2f} s, end-of-speech "
          f"silence 500 ms (decided {last_frame * 20 - utterance.duration_s * 1000:.0f} ms after the speech)")
    print(f"end of silence -> final transcript  p50 {statistics.median(end_ms):6.1f} ms  p95 {pct(end_ms, 95):6.1f} ms")
    print(f"  baseline: the same decode alone    p50 {statistics.median(decode_ms):6.1f} ms  "
          f"p95 {pct(decode_ms, 95):6.1f} ms")
    print(f"speech onset -> clear (barge-in)    p50 {statistics.median(barge_ms):6.1f} ms  "
          f"p95 {pct(barge_ms, 95):6.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--engine", default="pocketsphinx", choices=("pocketsphinx", "whisper", "vosk"))
    args = parser.parse_args()
    asyncio.run(run(args.n, args.engine))

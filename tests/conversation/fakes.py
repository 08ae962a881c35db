"""Fakes for the fast conversation tests: a scripted bot, a recognizer that returns given text or
raises, an inline recognizer pool, a synthesizer of tagged silence, and a driver that plays the door
on a manual clock. Nothing here sleeps in real time or starts a process."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapter.audio.encode import encode_audio
from adapter.audio.pcm import Pcm
from adapter.calls.bot import BotUnavailable
from adapter.calls.events import (
    AudioIn,
    BotFailed,
    BotSaid,
    Clear,
    HangUp,
    Heard,
    InputEvent,
    Listening,
    OutputEvent,
    Play,
    PlaybackDone,
    Transfer,
)
from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.replies import BotReply
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec, Services
from adapter.conversation.settings import ConversationSettings
from adapter.conversation.store import CallState, MemoryStore
from adapter.speech.recognizer import Recognizer, RecognizerStream, Transcript

from .manual_clock import ManualClock

#: a Twilio-like live line: 8 kHz in, μ-law out, playback reported
LIVE = AudioSpec(in_rate=8000, out_format="ulaw8k", live=True, reports_playback=True)
#: a kiosk-like live stream: no playback reports, prompts timed by their duration
TIMED = AudioSpec(in_rate=8000, out_format="ulaw8k", live=True)
#: a request/response door (REST): whole recordings and entries, no timers
TURNS = AudioSpec(in_rate=8000, out_format="ulaw8k")

# --- the bot ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wait:
    """In a bot's answer: the bot takes `seconds` of the manual clock before going on."""

    seconds: float


Step = BotReply | Wait | Exception


def say(*prompts: str, **fields: Any) -> BotReply:
    """A bot reply that speaks `prompts` (and shows them)."""
    return BotReply(prompts=prompts, texts=prompts, **fields)


@dataclass
class ScriptedBot:
    """A BotPort answering from a script: `welcome`, `answers` by the caller's exact text, else `fallback`.
    An answer is a list of steps: replies (sent in order), waits on the manual clock, an exception (raised)."""

    clock: ManualClock
    welcome: list[Step] = field(default_factory=lambda: [say("Welcome.")])
    answers: dict[str, list[Step]] = field(default_factory=dict)
    fallback: list[Step] = field(default_factory=lambda: [say("Pardon?")])
    received: list[tuple[str, InputMeta | None]] = field(default_factory=list)
    closures: int = 0
    fail_closure: bool = False

    async def _answer(self, steps: list[Step]) -> AsyncIterator[BotReply]:
        for step in steps:
            if isinstance(step, Wait):
                await self.clock.sleep(step.seconds)
            elif isinstance(step, Exception):
                raise step
            else:
                yield step

    def stream_start_call(self, call: CallInfo) -> AsyncIterator[BotReply]:
        self.received.append(("ON_CONNECT", None))
        return self._answer(self.welcome)

    def stream_text(self, call: CallInfo, text: str, meta: InputMeta) -> AsyncIterator[BotReply]:
        self.received.append((text, meta))
        return self._answer(self.answers.get(text, self.fallback))

    def resume_call(self, call: CallInfo) -> None:
        self.received.append(("RESUMED", None))

    async def end_call(self, call: CallInfo) -> None:
        self.closures += 1
        if self.fail_closure:
            raise BotUnavailable("the bot is down")

    @property
    def texts(self) -> list[str]:
        return [text for text, _ in self.received]


# --- speech ----------------------------------------------------------------------------------------


class FakeRecognizer(Recognizer):
    """Hears whatever the test says was said: each decode takes the next of `results` (text, or an
    exception to raise); `decoded` keeps each decode's audio length and hints."""

    name = "fake"
    sample_rate = 8000

    def __init__(self, *results: str | Exception, confidence: float = 0.9, whole_utterance: bool = True) -> None:
        self.results = list(results)
        self.confidence = confidence
        self.whole_utterance = whole_utterance
        self.decoded: list[tuple[float, tuple[str, ...]]] = []

    def _next(self, seconds: float, hints: Sequence[str] | None) -> Transcript:
        self.decoded.append((seconds, tuple(hints or ())))
        result = self.results.pop(0) if self.results else ""
        if isinstance(result, Exception):
            raise result
        return Transcript(result, (), self.confidence if result else 0.0)

    def transcribe(self, pcm: Pcm, hints: Sequence[str] | None = None) -> Transcript:
        return self._next(pcm.duration_s, hints)

    def open_stream(self, rate: int, hints: Sequence[str] | None = None) -> RecognizerStream:
        return _FakeStream(self, rate, hints)


class _FakeStream(RecognizerStream):
    """A streaming engine's stream: partial text is the final text's first word once audio has come."""

    def __init__(self, recognizer: FakeRecognizer, rate: int, hints: Sequence[str] | None) -> None:
        super().__init__(rate, rate)
        self._recognizer, self._hints, self._bytes = recognizer, hints, 0
        upcoming = recognizer.results[0] if recognizer.results else ""
        self._first = upcoming.split()[0] if isinstance(upcoming, str) and upcoming else ""

    def _feed(self, data: bytes) -> None:
        self._bytes += len(data)
        self._partial = self._first

    def _final(self) -> Transcript:
        return self._recognizer._next(self._bytes / (2 * self.rate), self._hints)


class InlinePool:
    """The recognizer pool's face, running each job at once on the loop (the fakes are instant)."""

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.open = asyncio.Event()  # cleared: jobs wait (a recognizer still busy) until it is set
        self.open.set()

    async def run(self, call: str, fn: Callable[..., Any], *args: Any, speculative: bool = False) -> Any:
        await self.open.wait()
        return fn(*args)

    def promote(self, call: str) -> None:
        pass

    def drop(self, call: str) -> int:
        self.dropped.append(call)
        return 0


# --- prompts ---------------------------------------------------------------------------------------


class FakeSynthesizer:
    """Renders a prompt as silence of a known length: `durations[text]`, else one second a sentence
    (so a test knows how long each prompt plays); texts in `broken` raise their error instead."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}
        self.broken: dict[str, Exception] = {}

    def seconds(self, text: str) -> float:
        return self.durations.get(text, float(max(1, len(re.findall(r"[.?!]", text)))))

    async def render(self, text: str, fmt: str = "wav16k", voice: str | None = None) -> bytes:
        if text in self.broken:
            raise self.broken[text]
        return encode_audio(Pcm.silence(self.seconds(text), 8000), fmt)


# --- caller audio ----------------------------------------------------------------------------------


def voice(seconds: float, rate: int = 8000) -> Pcm:
    """A voiced sound (a 140 Hz buzz with harmonics, 4 Hz syllable swell) the VAD takes for speech and
    the DTMF detector does not take for keys."""
    t = np.arange(int(rate * seconds)) / rate
    buzz = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20)) * 0.2
    return Pcm.from_array(buzz * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)), rate)


def silence(seconds: float, rate: int = 8000) -> Pcm:
    return Pcm.silence(seconds, rate)


def brief(event: OutputEvent) -> str:
    """An output event as a short line, so a test asserts the exact sequence at a glance."""
    match event:
        case Play(text=text, barge_in=barge_in):
            return f"play{'' if barge_in else '!'} {text}"
        case Clear():
            return "clear"
        case Heard(text, final=False):
            return f"partial {text}"
        case Heard(text, "dtmf", digits=digits):
            return f"keys {digits} -> {text}"
        case Heard(text):
            return f"heard {text}"
        case BotSaid(texts, _):
            return f"said {' '.join(texts)}"
        case BotFailed(_, timeout):
            return "bot timeout" if timeout else "bot error"
        case Listening(expect, menu):
            keys_only = expect is not None and not expect.speech
            return "listening" + (" keys" if keys_only else "") + (" menu" if menu else "")
        case HangUp(reason):
            return f"hangup {reason}"
        case Transfer(to):
            return f"transfer {to}"
    raise AssertionError(f"unknown event {event!r}")


# --- the door --------------------------------------------------------------------------------------


class Door:
    """Plays the door on a manual clock: sends input, collects output; `settle` lets the loop run until
    nothing more happens without moving the clock."""

    def __init__(self, conversation: Conversation, bot: ScriptedBot, recognizer: FakeRecognizer,
                 synthesizer: FakeSynthesizer, clock: ManualClock, pool: InlinePool) -> None:
        self.conversation, self.bot, self.recognizer = conversation, bot, recognizer
        self.synthesizer, self.clock, self.pool = synthesizer, clock, pool
        self.events: list[OutputEvent] = []
        self._read = 0
        self._pump = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.conversation.events():
            self.events.append(event)

    async def settle(self) -> None:
        """Run the loop until it has nothing left to do at this moment of the clock: the call's inbox
        is empty and nothing has come out for a few rounds (every step here is instant: no real time)."""
        quiet = 0
        while quiet < 12:
            before = len(self.events)
            await asyncio.sleep(0)
            waiting = not self.conversation.closed and not self.conversation._inbox.empty()
            busy = len(self.events) != before or waiting
            quiet = 0 if busy else quiet + 1

    def send(self, event: InputEvent) -> None:
        self.conversation.send(event)

    async def take(self) -> list[str]:
        """The output since the last `take`, in brief."""
        await self.settle()
        new, self._read = self.events[self._read:], len(self.events)
        return [brief(e) for e in new]

    def plays(self) -> list[Play]:
        return [e for e in self.events if isinstance(e, Play)]

    async def advance(self, seconds: float) -> None:
        """Move the clock `seconds`, timer by timer, letting the loop handle each before the next is due."""
        end = self.clock.t + seconds
        await self.settle()
        while (due := self.clock.next_deadline) is not None and due <= end:
            self.clock.advance(due - self.clock.t)
            await self.settle()
        self.clock.advance(end - self.clock.t)
        await self.settle()

    async def after(self, seconds: float) -> list[str]:
        """Nothing comes out until `seconds` from now (checked just before); what comes out then."""
        await self.advance(seconds - 0.1)
        assert await self.take() == [], f"output before {seconds} s"
        await self.advance(0.1)
        return await self.take()

    async def played(self) -> None:
        """The door reports every prompt so far played to its end."""
        await self.settle()
        for play in self.plays():
            self.send(PlaybackDone(play.prompt_id))
        await self.settle()

    async def speak(self, pcm: Pcm) -> None:
        """The caller's live audio, in 20 ms frames as a phone line sends them, the clock moving along
        (a line cannot send faster than real time)."""
        size = 2 * pcm.rate // 50
        for i in range(0, len(pcm.data), size):
            self.send(AudioIn(pcm.data[i:i + size]))
            if i // size % 25 == 24:  # the clock catches up every 500 ms
                await self.advance(0.5)
        await self.settle()

    async def hang_up(self) -> None:
        await self.conversation.hang_up()
        await self.settle()


def conversation_of(clock: ManualClock, bot: ScriptedBot, recognizer: FakeRecognizer, synthesizer: FakeSynthesizer,
                    pool: InlinePool, audio: AudioSpec, settings: ConversationSettings,
                    resumed: CallState | None = None) -> Conversation:
    services = Services(recognizer, synthesizer, bot, MemoryStore(), clock, pool)  # type: ignore[arg-type]
    call = resumed.call if resumed else CallInfo.new("test", "+15551230000", "+15559870000")
    return Conversation(call, services, audio, settings, resumed)

"""Request/response calls (the REST door's, and Twilio's TwiML ones): one turn at a time, a turn flood
limit, the reply audio of each turn, idle hang-up.

Memory per call is bounded: the latest AUDIO_KEPT replies, each with at most ENCODINGS_KEPT encodings
(a client may ask for every format there is); an ended call keeps only its last reply (the goodbye a
phone system still has to play) for ENDED_KEEP_S, and none once the caller has hung up (DELETE).

A call's output events are pumped into a queue as they come; a turn reads them up to the event that
ends it (`Listening`, `HangUp`, `Transfer`, or the end of the call). Anything the bot says between
turns (async mode) is answered with the next turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from adapter.api_errors import ApiError
from adapter.audio.decode import decode_audio
from adapter.audio.encode import FORMATS, OutputFormat, encode_audio
from adapter.audio.pcm import Pcm
from adapter.calls.clock import Clock, Timer
from adapter.calls.events import BotFailed, BotSaid, CallerHungUp, HangUp, Heard, Listening, OutputEvent, Play, Transfer
from adapter.conversation.call import Conversation
from adapter.metrics import Metrics
from adapter.stage_timing import StageTimes

log = logging.getLogger(__name__)

DOOR = "rest"
FLOOD_WINDOW_S = 60.0
# How long an ended call still serves its last reply audio; the most ended calls kept that way.
ENDED_KEEP_S = 300.0
ENDED_CALLS_KEPT = 200
# Ended calls whose id alone is remembered after that (so they answer 409, or 204 to DELETE, not 404).
ENDED_IDS_KEPT = 10_000
# Reply audio kept per live call (a phone system fetches it right after the turn), and encodings per reply.
AUDIO_KEPT = 4
ENCODINGS_KEPT = 2
EMPTY_RATE = 16000


@dataclass
class TurnResult:
    """What one turn brought: the caller's input as heard, the bot's texts, the prompts, how it ended."""

    heard: Heard | None = None
    said: list[BotSaid] = field(default_factory=list)
    plays: list[Play] = field(default_factory=list)
    failed: BotFailed | None = None
    end: Listening | HangUp | Transfer | None = None  # None: the call ended under the turn
    audio: int | None = None  # the reply audio's number, if any was spoken

    @property
    def end_of_call(self) -> bool:
        return not isinstance(self.end, Listening)


class ReplyAudio:
    """One turn's prompts as one recording, encoded per format on demand; the latest ENCODINGS_KEPT
    encodings are kept (re-encoding is cheap, unbounded caching is not); no prompts is a recording of
    no length."""

    def __init__(self, plays: list[Play]) -> None:
        self._plays = plays
        self._encoded: OrderedDict[OutputFormat, bytes] = OrderedDict()
        if len(plays) == 1:
            self._encoded[FORMATS[plays[0].format]] = plays[0].audio

    @property
    def rate(self) -> int:
        """The prompts' own rate, which formats without a fixed rate (L16, MP3) keep."""
        if not self._plays:
            return EMPTY_RATE
        fmt = FORMATS[self._plays[0].format]
        return fmt.rate or decode_audio(self._plays[0].audio, fmt.content_type).rate

    def _pcm(self) -> Pcm:
        pcms = [decode_audio(p.audio, FORMATS[p.format].content_type_for(self.rate)) for p in self._plays]
        return Pcm(b"".join(p.data for p in pcms), self.rate)

    async def encoded(self, fmt: OutputFormat) -> bytes:
        data = self._encoded.pop(fmt, None)
        if data is None:  # MP3 goes through ffmpeg: off the loop
            data = await asyncio.to_thread(lambda: encode_audio(self._pcm(), fmt))
        self._encoded[fmt] = data
        while len(self._encoded) > ENCODINGS_KEPT:
            self._encoded.popitem(last=False)
        return data

    @property
    def kept_bytes(self) -> int:
        """The bytes of the encodings kept."""
        return sum(map(len, self._encoded.values()))


class RestCall:
    """One call through the REST door."""

    def __init__(self, conversation: Conversation, times: StageTimes, metrics: Metrics, clock: Clock,
                 turns_per_minute: int, idle_s: float) -> None:
        self.conversation = conversation
        self.id = conversation.call.user_id
        self.times = times
        self._metrics = metrics
        self._clock = clock
        self._turns_per_minute = turns_per_minute
        self._idle_s = idle_s
        self._events: asyncio.Queue[OutputEvent | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._busy = False
        self._recent: deque[float] = deque()
        self._audio: dict[int, ReplyAudio] = {}
        self._next_audio = 0
        self._idle: Timer | None = None

    @property
    def ended(self) -> bool:
        return self.conversation.closed

    @property
    def busy(self) -> bool:
        """A turn is running."""
        return self._busy

    def start_pump(self) -> asyncio.Task[None]:
        """Read the call's events; the idle timer runs from now, so a call whose welcome never comes
        is hung up too."""
        self._pump = asyncio.create_task(self._read_events(), name=f"{self.conversation.call.door} events {self.id}")
        self.touch()
        return self._pump

    async def _read_events(self) -> None:
        async for event in self.conversation.events():
            self._metrics.saw(self.conversation.call.door, event)
            self._events.put_nowait(event)
        self._events.put_nowait(None)
        if self._idle is not None:
            self._idle.cancel()
        self._audio = {n: a for n, a in self._audio.items() if n == self._next_audio - 1}

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the call for one turn.

        Raises:
            ApiError: 409 the call has ended; 429 a turn is already running, or too many this minute.
        """
        if self.ended:
            raise ApiError(409, "call_ended", "the call has ended")
        if self._busy:
            raise ApiError(429, "turn_in_progress", "this call is still answering a turn; send one turn at a time",
                           {"Retry-After": "1"})
        now = self._clock.now()
        while self._recent and now - self._recent[0] >= FLOOD_WINDOW_S:
            self._recent.popleft()
        if len(self._recent) >= self._turns_per_minute:
            wait = max(1, round(FLOOD_WINDOW_S - (now - self._recent[0])))
            raise ApiError(429, "too_many_turns",
                           f"over {self._turns_per_minute} turns a minute on this call; wait {wait} s",
                           {"Retry-After": str(wait)})
        self._recent.append(now)
        self._busy = True
        self.touch()
        try:
            yield
        finally:
            self._busy = False
            self.touch()

    def touch(self) -> None:
        """Restart the idle timer: a call nobody drives is hung up, as a silent phone line would be."""
        if self._idle is not None:
            self._idle.cancel()
        if not self.ended:
            self._idle = self._clock.call_later(self._idle_s, self._on_idle)

    def _on_idle(self) -> None:
        log.info("call %s: idle for %g s, hanging up", self.id, self._idle_s)
        self.conversation.send(CallerHungUp("idle"))

    async def collect(self) -> TurnResult:
        """The events of one turn, up to the one that ends it; the prompts (an apology for a failed bot
        request too) become reply audio."""
        result = TurnResult()
        while result.end is None:
            event = await self._events.get()
            match event:
                case None:
                    self._events.put_nowait(None)  # the call is over for every later reader too
                    break
                case Heard(final=True):
                    result.heard = event
                case BotSaid():
                    result.said.append(event)
                case Play():
                    result.plays.append(event)
                case BotFailed():
                    result.failed = event
                case Listening() | HangUp() | Transfer():
                    result.end = event
        if result.plays:
            result.audio = self._keep(ReplyAudio(result.plays))
        return result

    def _keep(self, audio: ReplyAudio) -> int:
        number = self._next_audio
        self._next_audio += 1
        self._audio[number] = audio
        self._audio.pop(number - AUDIO_KEPT, None)
        return number

    def drop_audio(self) -> None:
        """The caller has hung up: nobody will fetch this call's replies any more."""
        self._audio.clear()

    def audio(self, number: int) -> ReplyAudio:
        found = self._audio.get(number)
        if found is None:
            raise ApiError(404, "unknown_audio", f"this call has no reply audio {number} (or no longer keeps it)")
        return found


CallT = TypeVar("CallT", bound=RestCall)


class RestCalls(Generic[CallT]):
    """A door's calls by id (and any other keys they were added under): live ones; ended ones whole
    for ENDED_KEEP_S (at most ENDED_CALLS_KEPT), then their ids alone (at most ENDED_IDS_KEPT)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._calls: dict[str, CallT] = {}
        self._ended_calls: OrderedDict[tuple[str, ...], None] = OrderedDict()  # keys, oldest first
        self._ended_ids: OrderedDict[str, None] = OrderedDict()

    def add(self, call: CallT, *aliases: str) -> None:
        keys = (call.id, *aliases)
        for key in keys:
            self._calls[key] = call
        call.start_pump().add_done_callback(lambda _: self._ended(keys))

    def _ended(self, keys: tuple[str, ...]) -> None:
        self._ended_calls[keys] = None
        self._clock.call_later(ENDED_KEEP_S, lambda: self._forget(keys))
        while len(self._ended_calls) > ENDED_CALLS_KEPT:
            self._forget(next(iter(self._ended_calls)))

    def _forget(self, keys: tuple[str, ...]) -> None:
        if keys not in self._ended_calls:
            return  # forgotten early, to stay within ENDED_CALLS_KEPT
        del self._ended_calls[keys]
        for key in keys:
            self._calls.pop(key, None)
            self._ended_ids[key] = None
        while len(self._ended_ids) > ENDED_IDS_KEPT:
            self._ended_ids.popitem(last=False)

    def get(self, key: str) -> CallT | None:
        return self._calls.get(key)

    def ended_long_ago(self, key: str) -> bool:
        """The call ended and only its id is remembered."""
        return key in self._ended_ids

    def find(self, key: str) -> CallT:
        """The call, live or recently ended.

        Raises:
            ApiError: 409 only the id of the ended call is left; 404 no such call.
        """
        call = self._calls.get(key)
        if call is not None:
            return call
        if key in self._ended_ids:
            raise ApiError(409, "call_ended", "the call has ended")
        raise ApiError(404, "unknown_call", "no such call")

"""Request/response calls (the REST door's, and Twilio's TwiML ones): one turn at a time, a turn flood
limit, the reply audio of each turn, idle hang-up.

Memory per call is bounded: the latest AUDIO_KEPT replies, each with at most ENCODINGS_KEPT encodings
(a client may ask for every format there is); an ended call keeps only its last reply (the goodbye a
phone system still has to play) for ENDED_KEEP_S, and none once the caller has hung up (DELETE).

A call's output events are pumped into a queue as they come; a turn reads them up to the event that
ends it (`Listening`, `HangUp`, `Transfer`, or the end of the call). Anything the bot says between
turns (async mode) is answered with the next turn.

With KORE_VOICE_REDIS_URL (`SharedCalls`) a call's requests may land on any instance. A turn holds the
call's Redis lock; the instance it lands on uses its own copy of the conversation only if the stored
state says it still runs the call, else it ends its stale copy (which closes no session: the store's
`release` refuses) and rebuilds the call from the stored state. Reply audio is shared as its prompt
texts (a few hundred bytes, for ENDED_KEEP_S), not its bytes: another instance re-renders them, which
espeak-ng does byte for byte alike (through the prompt cache when it holds them). A door whose answers
are numbered (Twilio's TwiML) keeps its latest answer there too, for a retry landing elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from adapter.api_errors import ApiError
from adapter.app_state import SERVICES
from adapter.audio.decode import decode_audio
from adapter.audio.encode import FORMATS, OutputFormat, encode_audio
from adapter.audio.pcm import Pcm
from adapter.calls.clock import Clock, Timer
from adapter.calls.events import BotFailed, BotSaid, CallerHungUp, HangUp, Heard, Listening, OutputEvent, Play, Transfer
from adapter.cluster.wiring import CLUSTER
from adapter.conversation.call import Conversation
from adapter.conversation.store import CallState, RedisStore
from adapter.metrics import Metrics
from adapter.speech.synthesizer import Synthesizer
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
# A turn holds its call's cluster lock at most this long (an instance that dies mid-turn frees it then).
TURN_LOCK_S = 120.0


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


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """A numbered call's latest answer and its number (the count of answers it has had)."""

    number: int
    text: str


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
        self.shared: SharedCalls | None = None  # set when its door's calls are shared (RestCalls.add)

    @property
    def audio_key(self) -> str:
        """What its reply audio is shared under (a door may serve it under something else than the id)."""
        return self.id

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
            result.audio = await self._keep(result.plays)
        return result

    async def _keep(self, plays: list[Play]) -> int:
        if self.shared is None:
            number = self._next_audio
            self._next_audio += 1
        else:  # numbered across the cluster, and its texts kept for any instance
            number = await self.shared.keep_reply(self.audio_key, plays)
        self._audio[number] = ReplyAudio(plays)
        self._audio.pop(number - AUDIO_KEPT, None)
        return number

    async def drop_audio(self) -> None:
        """The caller has hung up: nobody will fetch this call's replies any more."""
        self._audio.clear()
        if self.shared is not None:
            await self.shared.drop_replies(self.audio_key)

    async def kept_audio(self, number: int) -> ReplyAudio | None:
        """Reply audio `number`: this instance's, else (shared calls) re-rendered from its stored texts;
        None when it is not (or no longer) kept."""
        found = self._audio.get(number)
        if found is None and self.shared is not None:
            found = await self.shared.reply(self.audio_key, number)
        return found

    async def audio(self, number: int) -> ReplyAudio:
        """`kept_audio`, which must be there.

        Raises:
            ApiError: 404 it is not kept.
        """
        found = await self.kept_audio(number)
        if found is None:
            raise ApiError(404, "unknown_audio", f"this call has no reply audio {number} (or no longer keeps it)")
        return found


CallT = TypeVar("CallT", bound=RestCall)


class RestCalls(Generic[CallT]):
    """A door's calls by id (and by the key their audio is shared under): live ones; ended ones whole
    for ENDED_KEEP_S (at most ENDED_CALLS_KEPT), then their ids alone (at most ENDED_IDS_KEPT)."""

    def __init__(self, clock: Clock, shared: SharedCalls | None = None) -> None:
        self._clock = clock
        self.shared = shared
        self._calls: dict[str, CallT] = {}
        # and their keys and the timer that forgets them, oldest first
        self._ended_calls: OrderedDict[CallT, tuple[tuple[str, ...], Timer]] = OrderedDict()
        self._ended_ids: OrderedDict[str, None] = OrderedDict()

    def add(self, call: CallT) -> None:
        keys = tuple(dict.fromkeys((call.id, call.audio_key)))
        for key in keys:
            self._calls[key] = call
        call.shared = self.shared
        call.start_pump().add_done_callback(lambda _: self._ended(call, keys))

    def _ended(self, call: CallT, keys: tuple[str, ...]) -> None:
        self._ended_calls[call] = (keys, self._clock.call_later(ENDED_KEEP_S, lambda: self._forget(call)))
        while len(self._ended_calls) > ENDED_CALLS_KEPT:
            self._forget(next(iter(self._ended_calls)))

    def _forget(self, call: CallT) -> None:
        ended = self._ended_calls.pop(call, None)
        if ended is None:
            return  # forgotten early, to stay within ENDED_CALLS_KEPT
        keys, timer = ended
        timer.cancel()  # forgotten early: its closure must not keep the call alive until it fires
        for key in keys:
            if self._calls.get(key) is call:  # not a copy rebuilt since under the same keys
                del self._calls[key]
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

    def held(self, key: str, wait: bool = False) -> AbstractAsyncContextManager[None]:
        """The call held across the cluster for one request (`SharedCalls.turn`); one box: nothing to hold
        (a call's own turn flag does it)."""
        return self.shared.turn(key, wait) if self.shared is not None else nullcontext()

    async def kept_reply(self, key: str, number: int) -> ReplyAudio | None:
        """A reply's audio, whichever instance made it; None when neither a call here nor the cluster keeps it."""
        call = self._calls.get(key)
        if call is not None:
            return await call.kept_audio(number)
        return await self.shared.reply(key, number) if self.shared is not None else None

    async def reply_audio(self, key: str, number: int) -> ReplyAudio:
        """`kept_reply`, which must be there.

        Raises:
            ApiError: 404 no such reply (kept), 409/404 as `find`.
        """
        found = await self.kept_reply(key, number)
        if found is not None:
            return found
        self.find(key)
        raise ApiError(404, "unknown_audio", f"this call has no reply audio {number} (or no longer keeps it)")

    async def current(self, key: str, rebuild: Callable[[CallState], CallT]) -> CallT:
        """The call as it stands now: `find`'s, or with shared calls the one the stored state says, this
        instance's copy if it still runs the call, else `rebuild(state)` (added here). Call it under the
        call's lock (`SharedCalls.turn`), so the state does not change meanwhile.

        Raises:
            ApiError: as `find`; 503 the shared state cannot be read.
        """
        shared, call = self.shared, self._calls.get(key)
        if shared is None:
            return self.find(key)
        try:
            stored = await shared.store.stored(key)
            ended = stored is None and call is None and await shared.store.ended(key)
        except RedisError:
            raise ApiError(503, "unavailable", "the shared call state cannot be read; try again",
                           {"Retry-After": "1"}) from None
        if call is not None and not call.ended and stored is not None and stored.owner == shared.store.owner:
            return call
        if call is not None and not call.ended:  # another instance has taken the call over, or ended it
            await call.conversation.hang_up("taken over by another instance")  # closes no session (release)
        if stored is None:
            if ended:
                raise ApiError(409, "call_ended", "the call has ended")
            return self.find(key)
        rebuilt = rebuild(stored.state)
        self.add(rebuilt)
        return rebuilt


class SharedCalls:
    """A door's calls in the cluster (KORE_VOICE_REDIS_URL): one turn at a time across instances, reply
    audio numbered cluster-wide and kept as texts (re-rendered where it is fetched), the latest answer
    of a numbered call."""

    def __init__(self, redis: Redis, store: RedisStore, synthesizer: Callable[[], Synthesizer]) -> None:
        self._redis = redis
        self.store = store
        self._synthesizer = synthesizer  # the app's, once it is up

    @asynccontextmanager
    async def turn(self, call_id: str, wait: bool = False) -> AsyncIterator[None]:
        """Hold the call across the cluster for one request; `wait`: until a turn running elsewhere is over
        (a hang-up), else refuse at once.

        Raises:
            ApiError: 429 another instance runs a turn of the call; 503 Redis cannot be reached.
        """
        lock = self._redis.lock(f"kv:turn:{call_id}", timeout=TURN_LOCK_S, blocking=wait,
                                blocking_timeout=TURN_LOCK_S)
        try:
            held = await lock.acquire()
        except RedisError:
            raise ApiError(503, "unavailable", "the shared call state cannot be reached; try again",
                           {"Retry-After": "1"}) from None
        if not held:
            raise ApiError(429, "turn_in_progress", "this call is still answering a turn; send one turn at a time",
                           {"Retry-After": "1"})
        try:
            yield
        finally:
            try:
                await lock.release()
            except (LockError, RedisError) as exc:  # expired, or Redis gone: it expires on its own
                log.warning("call %s: turn lock not released: %s", call_id, exc)

    async def keep_reply(self, key: str, plays: list[Play]) -> int:
        """The reply's number across the cluster; its texts are kept for ENDED_KEEP_S."""
        keep_ms = round(ENDED_KEEP_S * 1000)
        async with self._redis.pipeline(transaction=True) as pipe:
            number, _ = await pipe.incr(_replies_key(key)).pexpire(_replies_key(key), keep_ms).execute()
        number -= 1
        texts = {"format": plays[0].format, "texts": [p.text for p in plays]}
        await self._redis.set(_reply_key(key, number), json.dumps(texts), px=keep_ms)
        return number

    async def reply(self, key: str, number: int) -> ReplyAudio | None:
        """Reply `number` re-rendered from its texts; None when it is not (or no longer) kept."""
        raw = await self._redis.get(_reply_key(key, number))
        if raw is None:
            return None
        kept = json.loads(raw)
        synthesizer, fmt = self._synthesizer(), kept["format"]
        audios = [await synthesizer.render(text, fmt) for text in kept["texts"]]
        return ReplyAudio([Play(n, text, audio, fmt, 0.0, False) for n, (text, audio) in
                           enumerate(zip(kept["texts"], audios, strict=True))])

    async def keep_answer(self, key: str, answer: KeptAnswer) -> None:
        """A numbered call's latest answer (Twilio's TwiML), for a retry landing on any instance; kept as
        long as the call's state would be."""
        kept = json.dumps({"number": answer.number, "text": answer.text})
        await self._redis.set(_answer_key(key), kept, px=round(self.store.ttl_s * 1000))

    async def kept_answer(self, key: str) -> KeptAnswer | None:
        raw = await self._redis.get(_answer_key(key))
        return None if raw is None else KeptAnswer(**json.loads(raw))

    async def drop_replies(self, key: str) -> None:
        try:
            count = int(await self._redis.get(_replies_key(key)) or 0)
            await self._redis.delete(_replies_key(key), *(_reply_key(key, n) for n in range(count)))
        except RedisError as exc:
            log.warning("reply texts of %s not dropped (Redis: %s); they expire on their own", key, exc)


def _answer_key(key: str) -> str:
    return f"kv:answer:{key}"


def _replies_key(key: str) -> str:
    return f"kv:replies:{key}"


def _reply_key(key: str, number: int) -> str:
    return f"kv:reply:{key}:{number}"


async def share_calls(app: web.Application, calls: RestCalls[CallT]) -> None:
    """At start-up: with shared state (KORE_VOICE_REDIS_URL), a door's calls are shared across the cluster."""
    cluster = app.get(CLUSTER)
    if cluster is not None:
        calls.shared = SharedCalls(cluster.link.redis, cluster.store, lambda: app[SERVICES].synthesizer)

"""The conversation of one call: turn-taking between the caller and the bot, whatever the door.

Everything that happens to a call, the door's events, timers, recognizer results and bot replies, goes
through one inbox and is handled in order by one task, so no two handlers ever race.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from adapter.audio.decode import decode_audio
from adapter.audio.dtmf import DtmfDetector, detect_keys
from adapter.audio.encode import FORMATS
from adapter.audio.pcm import Pcm
from adapter.calls.bot import BotError, BotTimeout
from adapter.calls.clock import Timer
from adapter.calls.events import (
    AudioIn,
    BotFailed,
    BotReplyIn,
    BotSaid,
    CallerHungUp,
    Clear,
    HangUp,
    Heard,
    InputEvent,
    KeyIn,
    KeysIn,
    Listening,
    NoInput,
    OutputEvent,
    Play,
    PlaybackDone,
    TextIn,
    Transfer,
    UtteranceIn,
)
from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.keypad import DigitSpec
from adapter.calls.phase import Phase
from adapter.calls.replies import BotReply
from adapter.conversation.digits import DigitCollector, Digits
from adapter.conversation.endpointing import Endpointer
from adapter.conversation.pace import AudioPace
from adapter.conversation.services import AudioSpec, Services
from adapter.conversation.settings import ConversationSettings
from adapter.conversation.speech_turn import SpeechTurn
from adapter.conversation.store import CallState
from adapter.speech.recognizer import SILENCE, Transcript
from adapter.speech.tts_worker import TtsError

log = logging.getLogger(__name__)


# Internal events: results of work the conversation started, posted back to its own inbox.
@dataclass(frozen=True, slots=True)
class _Timeout:
    name: str
    generation: int


@dataclass(frozen=True, slots=True)
class _BotBatch:
    turn: int
    reply: BotReply | None  # None: the exchange is over


@dataclass(frozen=True, slots=True)
class _BotFailed:
    turn: int
    error: Exception


@dataclass(frozen=True, slots=True)
class _Recognized:
    utterance: int
    transcript: Transcript


_END = object()


def _normalized(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


class Conversation:
    """One call. Doors `send` input events and read `events()`; `run` until the call ends."""

    def __init__(self, call: CallInfo, services: Services, audio: AudioSpec = AudioSpec(),
                 settings: ConversationSettings = ConversationSettings()) -> None:
        self.call = call
        self.services = services
        self.audio = audio
        self.settings = settings
        self.state = CallState(call)
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._outbox: asyncio.Queue[object] = asyncio.Queue()
        self._endpointer = Endpointer(audio.in_rate, settings.endpoint)
        self._dtmf = DtmfDetector(audio.in_rate) if audio.inband_dtmf else None
        self._collector = DigitCollector(DigitSpec(finish_on_key="#"))
        self._timers: dict[str, Timer] = {}
        self._generation = itertools.count(1)
        self._timer_generation: dict[str, int] = {}
        self._prompt_ids = itertools.count(1)
        self._playing: dict[int, bool] = {}  # prompt id -> may the caller barge in
        self._speaking_until = 0.0
        self._utterance: SpeechTurn | None = None
        self._utterance_ids = itertools.count(1)
        self._utterance_id = 0
        self._bot_task: asyncio.Task[None] | None = None
        self._turn = 0
        self._turn_spoke = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._pace = AudioPace(services.clock, audio.in_rate, settings.max_audio_ahead_s)
        self._flooded = False

    # --- the door's side ------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the call (the bot's welcome); the task ends when the call does."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"call {self.call.user_id}")
        return self._task

    def send(self, event: InputEvent) -> None:
        if self._closed or self._flooded:
            return
        if isinstance(event, AudioIn) and self.audio.live and not self._pace.take(len(event.data)):
            self._flooded = True  # nothing more from this caller; the call ends in order
            event = CallerHungUp(f"audio {self._pace.ahead_s:.0f} s ahead of real time")  # type: ignore[assignment]
            self._emit(HangUp("audio faster than real time"))
        self._inbox.put_nowait(event)

    async def events(self) -> AsyncIterator[OutputEvent]:
        """Output events in order, until the call has ended."""
        while True:
            event = await self._outbox.get()
            if event is _END:
                self._outbox.put_nowait(_END)  # a second reader ends too
                return
            yield event  # type: ignore[misc]

    async def hang_up(self, reason: str = "caller hung up") -> None:
        """End the call from the door's side and wait until it is closed (`SESSION_CLOSURE` sent)."""
        self.send(CallerHungUp(reason))
        if self._task is not None:
            await asyncio.shield(self._task)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def phase(self) -> Phase:
        """Whose turn it is: a door takes the caller's input only while `LISTENING`."""
        return self.state.phase

    @property
    def listening(self) -> Listening | None:
        """What the call waits for from the caller (speech, keys, a menu); None unless it waits."""
        if self.state.phase != Phase.LISTENING:
            return None
        return Listening(self.state.expect, self.state.menu)

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            stored = await self._save(None)
            self._ask_bot(None, None)
            while not self._closed:
                await self._handle(await self._inbox.get())
                stored = await self._save(stored)
        except Exception:
            log.exception("call %s: conversation failed", self.call.user_id)
            await self._hang_up_with(self.settings.phrases.bot_error, "internal error")
        finally:
            await self._close("ended")

    async def _save(self, stored: CallState | None) -> CallState | None:
        """Write the state when it changed (an audio frame mostly changes nothing); a closed call's
        state is deleted, not written. Returns the copy now stored."""
        if self._closed or self.state == stored:
            return stored
        await self.services.store.put(self.call.user_id, self.state)
        return dataclasses.replace(self.state)

    async def _handle(self, event: object) -> None:
        match event:
            case AudioIn(data):
                await self._on_audio(data)
            case KeyIn(key):
                await self._on_key(key)
            case KeysIn(keys):
                await self._on_entry(keys)
            case UtteranceIn(pcm):
                await self._on_utterance(pcm)
            case TextIn(text, confidence):
                await self._on_heard(text, confidence)
            case NoInput():
                if self.state.phase == Phase.LISTENING:
                    await self._on_no_input()
            case PlaybackDone(prompt_id):
                self._on_played(prompt_id)
            case CallerHungUp(reason):
                await self._close(reason)
            case BotReplyIn(reply):
                await self._on_bot_batch(self._turn, reply)
            case _BotBatch(turn, reply):
                await self._on_bot_batch(turn, reply)
            case _BotFailed(turn, error):
                await self._on_bot_failed(turn, error)
            case _Recognized(utterance, transcript):
                if utterance == self._utterance_id:
                    self._utterance = None
                    await self._on_heard(transcript.text, transcript.confidence)
            case _Timeout(name, generation):
                if self._timer_generation.get(name) == generation:
                    del self._timer_generation[name]
                    await self._on_timeout(name)

    # --- timers ------------------------------------------------------------------------------------

    def _set_timer(self, name: str, delay: float) -> None:
        self._cancel_timer(name)
        generation = next(self._generation)
        self._timer_generation[name] = generation
        self._timers[name] = self.services.clock.call_later(
            delay, lambda: self.send(_Timeout(name, generation)))  # type: ignore[arg-type]

    def _cancel_timer(self, *names: str) -> None:
        for name in names:
            timer = self._timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            self._timer_generation.pop(name, None)

    async def _on_timeout(self, name: str) -> None:
        s = self.settings
        if name == "filler":
            await self._speak(s.phrases.filler)
        elif name == "giveup":
            self._cancel_bot()
            self._emit(BotFailed(f"the bot did not answer within {self.settings.bot_giveup_s:g} s", timeout=True))
            await self._speak(s.phrases.bot_slow)
            self._listen()
        elif name == "inter_digit":
            await self._on_digits(self._collector.timeout())
        elif name == "no_input":
            await self._on_no_input()

    async def _on_no_input(self) -> None:
        """Silence: say the last prompt again, or goodbye after too many."""
        s = self.settings
        self.state.no_input += 1
        if self.state.no_input > s.max_no_input:
            await self._hang_up_with(s.phrases.no_input_goodbye, "no input")
            return
        await self._speak(self.state.last_prompt or s.phrases.no_match)
        if self.audio.live:
            self._arm_no_input()
        else:  # a request/response door's turn ends with the re-prompt
            self._listen()

    # --- the bot -----------------------------------------------------------------------------------

    def _ask_bot(self, text: str | None, meta: InputMeta | None) -> None:
        """Send the caller's text (or, for None, start the call) and wait for the bot's reply."""
        self._cancel_bot()
        self._cancel_timer("no_input", "inter_digit")
        self._drop_utterance()
        self._turn += 1
        self._turn_spoke = False
        self.state.phase = Phase.BOT
        self.state.turns += 1
        self._set_timer("filler", self.settings.filler_after_s)
        self._set_timer("giveup", self.settings.bot_giveup_s)
        self._bot_task = asyncio.create_task(self._exchange(self._turn, text, meta))

    async def _exchange(self, turn: int, text: str | None, meta: InputMeta | None) -> None:
        bot = self.services.bot
        try:
            replies = bot.stream_start_call(self.call) if text is None else bot.stream_text(self.call, text, meta)
            async for reply in replies:
                self.send(_BotBatch(turn, reply))  # type: ignore[arg-type]
            self.send(_BotBatch(turn, None))  # type: ignore[arg-type]
        except Exception as exc:  # a failed turn is spoken about; the call goes on
            self.send(_BotFailed(turn, exc))  # type: ignore[arg-type]

    def _cancel_bot(self) -> None:
        if self._bot_task is not None and not self._bot_task.done():
            self._bot_task.cancel()
        self._bot_task = None
        self._cancel_timer("filler", "giveup")

    async def _on_bot_batch(self, turn: int, reply: BotReply | None) -> None:
        if turn != self._turn or self._closed:
            return
        if reply is None:
            # The exchange is over; in async mode the reply is still to come through the inbox.
            if self._turn_spoke and self.state.phase == Phase.BOT:
                self._listen()
            return
        if reply.prompts or reply.action:
            self._cancel_timer("filler")
        if reply.texts or reply.menu:
            self._emit(BotSaid(reply.texts, reply.menu))
        if reply.menu is not None or reply.expect is not None or reply.prompts:
            self.state.menu = reply.menu
            self.state.expect = reply.expect
        if reply.prompts:
            self._turn_spoke = True
            self.state.last_prompt = " ".join(reply.prompts)
            await self._speak(self.state.last_prompt)
            self._arm_no_input()  # a late (async) message restarts the caller's time to answer
        if reply.action is not None:
            if reply.action.kind == "transfer" and reply.action.to:
                self._emit(Transfer(reply.action.to))
                await self._close("transferred")
            else:
                self._emit(HangUp("the bot ended the call"))
                await self._close("bot hung up")
            return
        if (self._turn_spoke and not reply.pending or reply.empty) and self.state.phase == Phase.BOT:
            self._listen()

    async def _on_bot_failed(self, turn: int, error: Exception) -> None:
        if turn != self._turn or self._closed:
            return
        log.warning("call %s: bot request failed: %s", self.call.user_id, error)
        self._cancel_bot()
        timeout = isinstance(error, BotTimeout)
        self._emit(BotFailed(str(error), timeout=timeout))
        if self.state.turns == 1:  # no welcome: nothing to talk about
            await self._hang_up_with(self.settings.phrases.unavailable, "bot unavailable")
        else:
            await self._speak(self.settings.phrases.bot_slow if timeout else self.settings.phrases.bot_error)
            self._listen()

    # --- speaking ----------------------------------------------------------------------------------

    async def _speak(self, text: str, barge_in: bool | None = None) -> None:
        fmt = self.audio.out_format
        try:
            audio = await self.services.synthesizer.render(text, fmt)
        except TtsError as exc:  # the caller misses one prompt; the call goes on
            log.error("call %s: could not synthesize a prompt: %s", self.call.user_id, exc)
            return
        duration = decode_audio(audio, FORMATS[fmt].content_type).duration_s
        prompt_id = next(self._prompt_ids)
        allowed = self.settings.barge_in if barge_in is None else barge_in
        self._playing[prompt_id] = allowed
        now = self.services.clock.now()
        self._speaking_until = max(now, self._speaking_until) + duration
        self._emit(Play(prompt_id, text, audio, fmt, duration, allowed))

    @property
    def _speaking(self) -> bool:
        if not self.audio.live:
            return False  # request/response doors play each answer before the next turn
        if self.audio.reports_playback:
            return bool(self._playing)
        return self.services.clock.now() < self._speaking_until

    def _on_played(self, prompt_id: int) -> None:
        self._playing.pop(prompt_id, None)
        if not self._playing and self.state.phase == Phase.LISTENING:
            self._arm_no_input()

    def _barge_in_allowed(self) -> bool:
        if self.audio.reports_playback:
            return all(self._playing.values())
        return self.settings.barge_in

    def _stop_playback(self) -> None:
        self._playing.clear()
        self._speaking_until = self.services.clock.now()
        self._emit(Clear())

    async def _hang_up_with(self, text: str, reason: str) -> None:
        if self._closed:
            return
        try:
            await self._speak(text, barge_in=False)
        except Exception:  # the goodbye is a courtesy; the hang-up must happen anyway
            log.exception("call %s: could not speak the goodbye", self.call.user_id)
        self._emit(HangUp(reason))
        await self._close(reason)

    # --- listening ----------------------------------------------------------------------------------

    def _listen(self) -> None:
        """The bot has answered: wait for speech or keys, as the bot asked."""
        self._cancel_timer("filler", "giveup")
        self.state.phase = Phase.LISTENING
        listening = Listening(self.state.expect, self.state.menu)
        self._collector = DigitCollector(listening.digits)
        self._emit(listening)
        self._arm_no_input()

    def _arm_no_input(self) -> None:
        if not self.audio.live or self.state.phase != Phase.LISTENING:
            return
        if self.audio.reports_playback:
            if not self._playing:
                self._set_timer("no_input", self.settings.no_input_s)
            return
        wait = max(self._speaking_until - self.services.clock.now(), 0.0)
        self._set_timer("no_input", wait + self.settings.no_input_s)

    @property
    def _speech_expected(self) -> bool:
        return self.state.expect is None or self.state.expect.speech

    def _hints(self) -> list[str] | None:
        menu = self.state.menu
        return [o.label for o in menu.options] if menu else None

    def _drop_utterance(self) -> None:
        if self._utterance is not None:
            self._utterance.cancel()
            self._utterance = None
        self._utterance_id = 0
        self._endpointer.reset()

    async def _on_audio(self, data: bytes) -> None:
        for key in self._dtmf.feed(data) if self._dtmf else ():
            await self._on_key(key.key)
        if self.state.phase != Phase.LISTENING or self._collector.started or not self._speech_expected:
            return  # keys only; and while the caller types, the tones' tails are not speech
        step = self._endpointer.feed(data)
        if step.started:
            self._cancel_timer("no_input")
            self._utterance_id = next(self._utterance_ids)
            utterance_id = self._utterance_id
            self._utterance = SpeechTurn(
                self.services.recognizer, self.services.recognizer_pool, self.call.user_id, self.audio.in_rate,
                self._hints(),
                on_partial=lambda text: self._emit(Heard(text, "speech", final=False)),
                on_final=lambda t: self.send(_Recognized(utterance_id, t)),  # type: ignore[arg-type]
            )
        if self._utterance is None:
            return
        self._utterance.feed(step.speech, step.silent_ms)
        speculate = self.settings.speculate_ms
        if speculate and step.silent_ms >= speculate and not step.ended and not self._speaking:
            self._utterance.speculate()
        barging = self._speaking and self._endpointer.in_speech and step.voiced_ms >= self.settings.barge_in_min_ms
        if barging and self._barge_in_allowed():
            self._stop_playback()
        if step.ended:
            if self._speaking:
                self._drop_utterance()  # too short to barge in, or the prompt may not be cut: ignore it
                self._arm_no_input()
            else:
                self._utterance.finish()

    async def _on_utterance(self, pcm: Pcm) -> None:
        """A whole recording (request/response doors): keys if it holds tones, else speech."""
        if self.state.phase != Phase.LISTENING:
            return
        pool, call = self.services.recognizer_pool, self.call.user_id
        try:  # both are CPU work (a minute of audio: most of a second), so they run in the recognizer's pool
            keys = await pool.run(call, detect_keys, pcm)
            if not keys and self._speech_expected:
                transcript = await pool.run(call, self.services.recognizer.transcribe, pcm, self._hints())
        except Exception as exc:  # noqa: BLE001 - the pool logged it; heard as nothing, the call goes on
            log.warning("call %s: nothing heard in a recording: %s", call, exc)
            keys, transcript = [], SILENCE
        if keys:
            await self._on_entry("".join(key.key for key in keys))
        elif not self._speech_expected:
            await self._no_match()  # the bot asked for keys only
        else:
            await self._on_heard(transcript.text, transcript.confidence)

    async def _on_entry(self, keys: str) -> None:
        """A whole keypad entry: the keys, then the end of the entry if they did not finish it."""
        for key in keys:
            await self._on_key(key)
        if self._collector.started and self.state.phase == Phase.LISTENING:
            await self._on_digits(self._collector.timeout())

    async def _on_key(self, key: str) -> None:
        if self.state.phase != Phase.LISTENING:
            return
        if self._speaking:
            if not self._barge_in_allowed():
                return
            self._stop_playback()
        self._drop_utterance()  # keys typed during speech win over the speech
        self._cancel_timer("no_input")
        entry = self._collector.press(key)
        if entry is None:
            self._set_timer("inter_digit", self.settings.inter_digit_s)
        else:
            await self._on_digits(entry)

    async def _on_digits(self, entry: Digits) -> None:
        self._cancel_timer("inter_digit")
        if not entry.complete or not entry.digits:
            await self._no_match()
            return
        menu = self.state.menu
        payload = menu.payload_for(entry.digits) if menu else None
        text = payload if payload is not None else entry.digits
        self.state.no_match = self.state.no_input = 0
        self._emit(Heard(text, "dtmf", digits=entry.digits))
        self._ask_bot(text, InputMeta("dtmf", keys=entry.keys))

    async def _on_heard(self, text: str, confidence: float | None) -> None:
        if self.state.phase != Phase.LISTENING:
            return
        text = text.strip()
        if not text or (confidence is not None and confidence < self.settings.min_confidence):
            await self._no_match()
            return
        menu = self.state.menu
        chosen = next((o for o in menu.options if _normalized(o.label) == _normalized(text)), None) if menu else None
        self.state.no_match = self.state.no_input = 0
        self._emit(Heard(text, "speech", confidence=confidence))
        self._ask_bot(chosen.payload if chosen else text, InputMeta("speech", confidence=confidence))

    async def _no_match(self) -> None:
        self.state.no_match += 1
        if self.state.no_match > self.settings.max_no_match:
            await self._hang_up_with(self.settings.phrases.no_match_goodbye, "no match")
            return
        await self._speak(self.settings.phrases.no_match)
        self._listen()

    # --- the end -----------------------------------------------------------------------------------

    def _emit(self, event: OutputEvent) -> None:
        self._outbox.put_nowait(event)

    async def _close(self, reason: str) -> None:
        """Close once, whatever ended the call: timers, work in flight, `SESSION_CLOSURE`."""
        if self._closed:
            return
        self._closed = True
        self.state.phase = Phase.CLOSED
        self.state.closed_reason = reason
        self._cancel_bot()
        self._cancel_timer(*list(self._timers))
        self._drop_utterance()
        self.services.recognizer_pool.drop(self.call.user_id)  # its waiting decodes end with it
        try:
            await self.services.bot.end_call(self.call)
        except BotError as exc:
            log.warning("call %s: SESSION_CLOSURE failed: %s", self.call.user_id, exc)
        finally:
            await self.services.store.delete(self.call.user_id)  # the caller's number and prompts go with the call
            self._outbox.put_nowait(_END)

"""The conversation of one call: turn-taking between the caller and the bot, whatever the door.

Everything that happens to a call, the door's events, timers, recognizer results and bot replies, goes
through one inbox and is handled in order by one task, so no two handlers ever race. This module is
that loop and the door's face of it; each concern is a part of its own (`bot_exchange`, `caller_input`,
`reprompts`, `playout`, `timers`), reached by the others through `core.CallCore`, which this class is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator

from adapter.calls.bot import BotError
from adapter.calls.events import (
    AudioIn,
    BotReplyIn,
    CallerHungUp,
    HangUp,
    InputEvent,
    KeyIn,
    KeysIn,
    Listening,
    NoInput,
    OutputEvent,
    PlaybackDone,
    TextIn,
    UtteranceIn,
)
from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.phase import Phase
from adapter.conversation.bot_exchange import BotAnswered, BotExchange, BotRequestFailed
from adapter.conversation.caller_input import CallerInput, Recognized
from adapter.conversation.pace import AudioPace
from adapter.conversation.playout import Playout
from adapter.conversation.reprompts import Reprompts
from adapter.conversation.services import AudioSpec, Services
from adapter.conversation.settings import ConversationSettings
from adapter.conversation.store import CallState
from adapter.conversation.timers import FILLER, GIVE_UP, INTER_DIGIT, NO_INPUT, Timeout, Timers
from adapter.json_log import call_context

log = logging.getLogger(__name__)

_END = object()


class Conversation:
    """One call. Doors `send` input events and read `events()`; `run` until the call ends."""

    def __init__(self, call: CallInfo, services: Services, audio: AudioSpec = AudioSpec(),
                 settings: ConversationSettings = ConversationSettings(), resumed: CallState | None = None) -> None:
        """`resumed`: the stored state of a call another instance (or an earlier copy) ran: this one goes
        on listening where it stopped, in the bot's same session, instead of starting a new one."""
        self.call = call
        self.services = services
        self.audio = audio
        self.settings = settings
        self.state = dataclasses.replace(resumed) if resumed is not None else CallState(call)
        self._resumed = resumed is not None
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._outbox: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._pace = AudioPace(services.clock, audio.in_rate, settings.max_audio_ahead_s)
        self._flooded = False
        self.timers = Timers(services.clock, self.post)
        self.playout = Playout(call.user_id, services, audio, settings.barge_in, self.emit)
        self._bot = BotExchange(self)
        self._input = CallerInput(self)
        self._reprompts = Reprompts(self)

    # --- the door's side ------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the call (the bot's welcome, unless resumed); the task ends when the call does."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"call {self.call.user_id}",
                                             context=call_context(self.call.user_id))  # its lines name it
        return self._task

    def send(self, event: InputEvent) -> None:
        if self._closed or self._flooded:
            return
        if isinstance(event, AudioIn) and self.audio.live and not self._pace.take(len(event.data)):
            self._flooded = True  # nothing more from this caller; the call ends in order
            event = CallerHungUp(f"audio {self._pace.ahead_s:.0f} s ahead of real time")
            self.emit(HangUp("audio faster than real time"))
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
            if self._resumed:
                self._go_on()
            stored = await self._save(None)  # resumed: now stored as this instance's call (the hand-over)
            if not self._resumed:
                self.ask_bot(None, None)
            while not self._closed:
                await self._handle(await self._inbox.get())
                stored = await self._save(stored)
        except Exception:
            log.exception("call %s: conversation failed", self.call.user_id)
            await self.hang_up_with(self.settings.phrases.bot_error, "internal error")
        finally:
            await self.close("ended")

    def _go_on(self) -> None:
        """A resumed call listens as it did when stored (a turn its instance left unanswered is lost: the
        caller is listened to again), without a word: its last answer was given where it was made."""
        self._bot.resume()
        self.services.bot.resume_call(self.call)
        self.state.phase = Phase.LISTENING
        self._input.expect(Listening(self.state.expect, self.state.menu).digits)
        self.arm_no_input()

    async def _save(self, stored: CallState | None) -> CallState | None:
        """Write the state when it changed (an audio frame mostly changes nothing); a closed call's
        state is deleted, not written. Returns the copy now stored."""
        if self._closed or self.state == stored:
            return stored
        if not await self.services.store.put(self.call.user_id, self.state):  # a stale copy: it closes nothing
            await self.close("ended on another instance")
        return dataclasses.replace(self.state)

    async def _handle(self, event: object) -> None:
        match event:
            case AudioIn(data):
                await self._input.audio(data)
            case KeyIn(key):
                await self._input.key(key)
            case KeysIn(keys):
                await self._input.entry(keys)
            case UtteranceIn(pcm):
                await self._input.recording(pcm)
            case TextIn(text, confidence):
                await self._input.heard(text, confidence)
            case NoInput():
                if self.state.phase == Phase.LISTENING:
                    await self._reprompts.no_input()
            case PlaybackDone(prompt_id):
                if self.playout.played(prompt_id) and self.state.phase == Phase.LISTENING:
                    self.arm_no_input()
            case CallerHungUp(reason):
                await self.close(reason)
            case BotReplyIn(reply):
                await self._bot.answered(self._bot.turn, reply)
            case BotAnswered(turn, reply):
                await self._bot.answered(turn, reply)
            case BotRequestFailed(turn, error):
                await self._bot.failed(turn, error)
            case Recognized(utterance, transcript):
                await self._input.recognized(utterance, transcript)
            case Timeout() as timeout if self.timers.due(timeout):
                await self._timed_out(timeout.name)

    async def _timed_out(self, name: str) -> None:
        if name == FILLER:
            await self._bot.slow()
        elif name == GIVE_UP:
            await self._bot.give_up()
        elif name == INTER_DIGIT:
            await self._input.inter_digit_timeout()
        elif name == NO_INPUT:
            await self._reprompts.no_input()

    # --- the steps every part takes (core.CallCore) ---------------------------------------------------

    def emit(self, event: OutputEvent) -> None:
        self._outbox.put_nowait(event)

    def post(self, event: object) -> None:
        if not (self._closed or self._flooded):
            self._inbox.put_nowait(event)

    def listen(self) -> None:
        self.timers.cancel(FILLER, GIVE_UP)
        self.state.phase = Phase.LISTENING
        listening = Listening(self.state.expect, self.state.menu)
        self._input.expect(listening.digits)
        self.emit(listening)
        self.arm_no_input()

    def ask_bot(self, text: str | None, meta: InputMeta | None) -> None:
        self._input.stop()
        self._bot.ask(text, meta)

    def arm_no_input(self) -> None:
        self._reprompts.arm_no_input()

    async def no_match(self) -> None:
        await self._reprompts.no_match()

    async def hang_up_with(self, text: str, reason: str) -> None:
        if self._closed:
            return
        try:
            await self.playout.speak(text, barge_in=False)
        except Exception:  # the goodbye is a courtesy; the hang-up must happen anyway
            log.exception("call %s: could not speak the goodbye", self.call.user_id)
        self.emit(HangUp(reason))
        await self.close(reason)

    async def close(self, reason: str) -> None:
        """Close once, whatever ended the call: timers, work in flight, `SESSION_CLOSURE`."""
        if self._closed:
            return
        self._closed = True
        self.state.phase = Phase.CLOSED
        self.state.closed_reason = reason
        self._bot.cancel()
        self.timers.cancel_all()
        self._input.drop_utterance()
        self.services.recognizer_pool.drop(self.call.user_id)  # its waiting decodes end with it
        try:
            # The caller's number and prompts go with the call. A session the bot never heard of is not
            # closed (hung up before the welcome was asked), nor one another instance has taken over.
            if await self.services.store.release(self.call.user_id) and self._bot.reached:
                await self.services.bot.end_call(self.call)
        except BotError as exc:
            log.warning("call %s: SESSION_CLOSURE failed: %s", self.call.user_id, exc)
        finally:
            self._outbox.put_nowait(_END)

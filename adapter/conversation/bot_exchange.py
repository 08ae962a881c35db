"""The bot's side of each turn: ask it, say "one moment" when it is slow, give up when it is stuck,
speak its replies as they come (several parts, polling, async callbacks) and its failures.

One exchange runs at a time; each has a turn number, and whatever arrives for an older turn (a late
reply, a failure after the give-up) is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from adapter.calls.bot import BotTimeout
from adapter.calls.events import BotFailed, BotSaid, HangUp, Transfer
from adapter.calls.info import InputMeta
from adapter.calls.phase import Phase
from adapter.calls.replies import BotReply
from adapter.conversation.core import CallCore
from adapter.conversation.timers import FILLER, GIVE_UP

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BotAnswered:
    """Part of turn `turn`'s answer; `reply` None: the exchange is over."""

    turn: int
    reply: BotReply | None


@dataclass(frozen=True, slots=True)
class BotRequestFailed:
    turn: int
    error: Exception


class BotExchange:
    def __init__(self, core: CallCore) -> None:
        self._core = core
        self._task: asyncio.Task[None] | None = None
        self.turn = 0
        self._spoke = False  # whether this turn's answer has said something yet
        # Whether a request has gone to the bot: only then is there a session to close. A request whose
        # task was cancelled before it ran (the caller hung up at once) never left.
        self.reached = False

    def resume(self) -> None:
        """The call's session was opened elsewhere (another instance): it is the bot's to close too."""
        self.reached = True

    def ask(self, text: str | None, meta: InputMeta | None) -> None:
        """Send the caller's text (or, for None, start the call) and wait for the bot's reply."""
        core = self._core
        self.cancel()
        self.turn += 1
        self._spoke = False
        core.state.phase = Phase.BOT
        core.state.turns += 1
        core.timers.set(FILLER, core.settings.filler_after_s)
        core.timers.set(GIVE_UP, core.settings.bot_giveup_s)
        self._task = asyncio.create_task(self._exchange(self.turn, text, meta))

    async def _exchange(self, turn: int, text: str | None, meta: InputMeta | None) -> None:
        core = self._core
        bot = core.services.bot
        self.reached = True
        try:
            replies = bot.stream_start_call(core.call) if text is None else bot.stream_text(core.call, text, meta)
            async for reply in replies:
                core.post(BotAnswered(turn, reply))
            core.post(BotAnswered(turn, None))
        except Exception as exc:  # a failed turn is spoken about; the call goes on
            core.post(BotRequestFailed(turn, exc))

    def cancel(self) -> None:
        """Stop waiting for the bot (its request is cancelled, its timers too)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None
        self._core.timers.cancel(FILLER, GIVE_UP)

    async def slow(self) -> None:
        """The filler timer: the bot is slow, the caller hears that we are on it."""
        await self._core.playout.speak(self._core.settings.phrases.filler)

    async def give_up(self) -> None:
        """The give-up timer: the bot is stuck; say so and let the caller try again."""
        core = self._core
        self.cancel()
        core.emit(BotFailed(f"the bot did not answer within {core.settings.bot_giveup_s:g} s", timeout=True))
        await core.playout.speak(core.settings.phrases.bot_slow)
        core.listen()

    async def answered(self, turn: int, reply: BotReply | None) -> None:
        core = self._core
        if turn != self.turn or core.closed:
            return
        if reply is None:
            # The exchange is over; in async mode the reply is still to come through the inbox.
            if self._spoke and core.state.phase == Phase.BOT:
                core.listen()
            return
        if reply.prompts or reply.action:
            core.timers.cancel(FILLER)
        if reply.texts or reply.menu:
            core.emit(BotSaid(reply.texts, reply.menu))
        if reply.menu is not None or reply.expect is not None or reply.prompts:
            core.state.menu = reply.menu
            core.state.expect = reply.expect
        if reply.prompts:
            self._spoke = True
            core.state.last_prompt = " ".join(reply.prompts)
            await core.playout.speak(core.state.last_prompt)
            core.arm_no_input()  # a late (async) message restarts the caller's time to answer
        if reply.action is not None:
            if reply.action.kind == "transfer" and reply.action.to:
                core.emit(Transfer(reply.action.to))
                await core.close("transferred")
            else:
                core.emit(HangUp("the bot ended the call"))
                await core.close("bot hung up")
            return
        if (self._spoke and not reply.pending or reply.empty) and core.state.phase == Phase.BOT:
            core.listen()

    async def failed(self, turn: int, error: Exception) -> None:
        core = self._core
        if turn != self.turn or core.closed:
            return
        log.warning("call %s: bot request failed: %s", core.call.user_id, error)
        self.cancel()
        timeout = isinstance(error, BotTimeout)
        core.emit(BotFailed(str(error), timeout=timeout))
        phrases = core.settings.phrases
        if core.state.turns == 1:  # no welcome: nothing to talk about
            await core.hang_up_with(phrases.unavailable, "bot unavailable")
        else:
            await core.playout.speak(phrases.bot_slow if timeout else phrases.bot_error)
            core.listen()

"""The re-prompt policy: when the caller says nothing or nothing usable, say the prompt again or
apologise, and say goodbye after too many tries."""

from __future__ import annotations

from typing import Literal

from adapter.calls.phase import Phase
from adapter.conversation.core import CallCore
from adapter.conversation.timers import NO_INPUT


class Reprompts:
    def __init__(self, core: CallCore) -> None:
        self._core = core

    def arm_no_input(self) -> None:
        """Live calls only: the caller's time to answer runs from the end of the prompts."""
        core = self._core
        if not core.audio.live or core.state.phase != Phase.LISTENING:
            return
        quiet_in = core.playout.until_quiet()
        if quiet_in is not None:  # None: the door reports the end of the prompts, which arms it again
            core.timers.set(NO_INPUT, quiet_in + core.settings.no_input_s)

    async def _too_many(self, kind: Literal["no_input", "no_match"], most: int, goodbye: str) -> bool:
        """Count one more try of `kind` (the state's `no_input` or `no_match`); past `most`, say
        `goodbye` and end the call."""
        state = self._core.state
        setattr(state, kind, getattr(state, kind) + 1)
        if getattr(state, kind) <= most:
            return False
        await self._core.hang_up_with(goodbye, kind.replace("_", " "))
        return True

    async def no_input(self) -> None:
        """Silence: say the last prompt again, or goodbye after too many."""
        core, s = self._core, self._core.settings
        if await self._too_many("no_input", s.max_no_input, s.phrases.no_input_goodbye):
            return
        await core.playout.speak(core.state.last_prompt or s.phrases.no_match)
        if core.audio.live:
            self.arm_no_input()
        else:  # a request/response door's turn ends with the re-prompt
            core.listen()

    async def no_match(self) -> None:
        """Nothing usable heard or typed: apologise and listen again, or goodbye after too many."""
        core, s = self._core, self._core.settings
        if await self._too_many("no_match", s.max_no_match, s.phrases.no_match_goodbye):
            return
        await core.playout.speak(s.phrases.no_match)
        core.listen()

"""What every part of a conversation reaches through its call: the shared state, services and
settings, the outbox and inbox, and the few steps that change whose turn it is.

The parts (bot exchange, caller input, re-prompts) each hold one concern and talk to each other only
through this face, which `Conversation` implements; so no part imports another, or the dispatcher.
"""

from __future__ import annotations

from typing import Protocol

from adapter.calls.events import OutputEvent
from adapter.calls.info import CallInfo, InputMeta
from adapter.conversation.playout import Playout
from adapter.conversation.services import AudioSpec, Services
from adapter.conversation.settings import ConversationSettings
from adapter.conversation.store import CallState
from adapter.conversation.timers import Timers


class CallCore(Protocol):
    call: CallInfo
    services: Services
    audio: AudioSpec
    settings: ConversationSettings
    state: CallState
    timers: Timers
    playout: Playout

    @property
    def closed(self) -> bool: ...

    def emit(self, event: OutputEvent) -> None:
        """Out to the door."""

    def post(self, event: object) -> None:
        """Into the call's own inbox: work it started reports back in turn with the door's events."""

    def listen(self) -> None:
        """The bot has answered: wait for the caller's speech or keys."""

    def ask_bot(self, text: str | None, meta: InputMeta | None) -> None:
        """Stop listening and send the caller's text to the bot (None: start the call)."""

    def arm_no_input(self) -> None:
        """(Re)start the caller's time to answer, from the end of what plays."""

    async def no_match(self) -> None:
        """What the caller gave was nothing the call can use."""

    async def hang_up_with(self, text: str, reason: str) -> None:
        """Say `text` (no barge-in), then end the call."""

    async def close(self, reason: str) -> None:
        """End the call now, once."""

"""The bot's answer as the conversation sees it, whatever bot platform or transport it came through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from adapter.calls.keypad import ExpectedInput


@dataclass(frozen=True, slots=True)
class MenuOption:
    digit: str
    label: str
    payload: str  # what to send to the bot when the caller presses `digit`


@dataclass(frozen=True, slots=True)
class Menu:
    """A keypad menu read out as "For Savings, press 1."; digits map back to each option's payload."""

    options: tuple[MenuOption, ...]

    def payload_for(self, digit: str) -> str | None:
        return next((o.payload for o in self.options if o.digit == digit), None)


@dataclass(frozen=True, slots=True)
class CallAction:
    """End the call, or transfer it to `to` (a phone number or SIP URI, passed to the door as-is)."""

    kind: Literal["hangup", "transfer"]
    to: str | None = None


@dataclass(frozen=True, slots=True)
class BotReply:
    """Everything the conversation needs from one bot answer.

    `pending` is True when the bot may still send more for this turn: async mode (the rest arrives
    in the call's inbox) or polling stopped early (deadline, hang-up). `end_of_task` marks a finished
    dialog task, not the end of the call; only `action` ends or transfers the call. `messages` are the
    bot's own messages as the bot port received them, for the port's use (the conversation never reads them).
    """

    prompts: tuple[str, ...] = ()  # plain sentences to speak, menu read-out included
    texts: tuple[str, ...] = ()  # plain text for doors that show text
    menu: Menu | None = None
    expect: ExpectedInput | None = None  # None: the bot did not say
    action: CallAction | None = None
    end_of_task: bool = False
    pending: bool = False
    messages: tuple[Any, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to say, nothing to do and nothing more to come: the caller is listened to at once."""
        return not self.prompts and self.action is None and not self.pending

"""Who is calling, and how the caller's text was produced."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

InputMode = Literal["speech", "dtmf"]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One call as the bot sees it.

    `user_id` is the bot's user id for the call (Kore's `from.id` and JWT `sub`): unique per call,
    never the bare caller number, or a repeat caller would resume an old session (specs §7).
    """

    user_id: str
    caller: str | None = None  # ANI
    called: str | None = None  # DNIS
    door: str = ""  # which telephony door the call came through

    def __post_init__(self) -> None:
        if not self.user_id.strip():
            raise ValueError("a call's user id must not be empty")
        if self.caller and self.user_id.strip() == self.caller.strip():
            raise ValueError("a call's user id must not be the bare caller number")

    @classmethod
    def new(cls, door: str, caller: str | None = None, called: str | None = None) -> CallInfo:
        """A call with a fresh random user id (`call-<32 hex>`)."""
        return cls(f"call-{uuid.uuid4().hex}", caller, called, door)


@dataclass(frozen=True, slots=True)
class InputMeta:
    """How the caller's text was produced; the bot port passes it along (Kore: `customData`, `metaTags`)."""

    mode: InputMode = "speech"
    confidence: float | None = None  # ASR confidence 0..1
    keys: str | None = None  # the keys pressed, finish key included (e.g. "4532#")

"""The bot as the conversation knows it: a small port the Kore.ai client implements, and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.replies import BotReply


class BotError(Exception):
    """A turn with the bot failed; the caller hears an apology and the call goes on. `public` says
    what went wrong in words fit for a caller or API client (no URLs, tokens or bodies)."""

    public = "the bot could not answer"


class BotTimeout(BotError):
    """The bot did not answer in time."""

    public = "the bot did not answer in time"


class BotUnavailable(BotError):
    """The bot could not be reached or answered with an error."""

    public = "the bot is unavailable"


class BotPort(Protocol):
    """Start a call, send the caller's text, end the call. Each answer comes as one or more `BotReply`s
    (a reply may come in parts: several messages, polling); errors are `BotError`s."""

    def stream_start_call(self, call: CallInfo) -> AsyncIterator[BotReply]: ...

    def stream_text(self, call: CallInfo, text: str, meta: InputMeta) -> AsyncIterator[BotReply]: ...

    async def end_call(self, call: CallInfo) -> None: ...

    def resume_call(self, call: CallInfo) -> None:
        """A call whose session another instance opened goes on here: `end_call` closes it from here too."""

"""A live call over any stream (WebSocket, TCP, UDP/RTP): the door's transport read into the
conversation while its output events are played out, and the hang-up whichever side ends first.

How a streaming door uses it, once `open_call` has given it the conversation:

    stream = PacedStream(app[PACER], FORMAT, send_frame, played(conversation), ...)
    await serve(app, conversation, feed=self._feed(conversation, stream), play=paced(stream, self._ended),
                close=self._close)

- `feed`: reads the transport into the conversation (`conversation.send(...)`) and returns when the caller
  has gone (the transport closed, a hang-up message, a protocol error the door has answered);
- `play(event)`: puts one output event on the wire; `paced(stream, ended)` is that for a door whose
  prompts go through a `PacedStream` (all of them so far): it plays and clears, and on the bot's hang-up
  or transfer waits for the goodbye to play out, then calls the door's `ended(event)`;
- `close()`: closes the transport when the conversation ends first (the bot hung up or transferred); it
  must make `feed` return.
The call is hung up (`SESSION_CLOSURE` to the bot) exactly once whichever side ends, and every output
event is counted in the app's metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapter.app_state import METRICS
from adapter.calls.events import Clear, HangUp, OutputEvent, Play, PlaybackDone, Transfer
from adapter.conversation.call import Conversation
from adapter.doors.pacer import PacedStream
from adapter.json_log import CALL_ID

log = logging.getLogger(__name__)

#: how long after its audio should have played we wait for a goodbye (its echo) before closing anyway
GOODBYE_GRACE_S = 3.0


async def serve(app: web.Application, conversation: Conversation, feed: Awaitable[None],
                play: Callable[[OutputEvent], Awaitable[None]], close: Callable[[], Awaitable[object]]) -> None:
    """Run the call until both sides are done: `feed` has returned and the conversation has ended."""
    metrics = app[METRICS]
    door = conversation.call.door
    CALL_ID.set(conversation.call.user_id)  # the door's lines while it serves the call name it

    async def pump() -> None:
        try:
            async for event in conversation.events():
                metrics.saw(door, event)
                await play(event)
        finally:  # the conversation is over (or `play` broke): the transport goes too, which ends `feed`
            await close()

    pumping = asyncio.create_task(pump(), name=f"events of {conversation.call.user_id}")
    try:
        await feed
    finally:
        await conversation.hang_up("caller hung up")
        await pumping


def played(conversation: Conversation) -> Callable[[int], None]:
    """A `PacedStream`'s `played` callback: the prompt's end told to the conversation."""
    return lambda prompt: conversation.send(PlaybackDone(prompt))


def paced(stream: PacedStream, ended: Callable[[HangUp | Transfer], Awaitable[None]] | None = None,
          grace_s: float = GOODBYE_GRACE_S) -> Callable[[OutputEvent], Awaitable[None]]:
    """`serve`'s `play` for a door whose prompts go out through `stream`. The bot's hang-up or transfer
    waits until the goodbye has played (a closed transport drops the rest of it), then `ended(event)` does
    what the door must before `close` (a transfer target kept for the platform to ask for, a REST hang-up)."""

    async def play(event: OutputEvent) -> None:
        match event:
            case Play():
                await stream.play(event.prompt_id, event.audio)
            case Clear():
                await stream.clear()
            case HangUp() | Transfer():
                if not await stream.wait_played(stream.queued_s + grace_s):
                    log.info("%s: the goodbye did not finish playing; closing anyway", stream.name)
                if ended is not None:
                    await ended(event)

    return play

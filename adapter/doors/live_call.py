"""A live call over any stream (WebSocket, TCP, UDP/RTP): the door's transport read into the
conversation while its output events are played out, and the hang-up whichever side ends first.

How a streaming door uses it, once `open_call` has given it the conversation:

    await serve(app, conversation, feed=self._feed(conversation), play=self._play, close=self._close)

- `feed`: reads the transport into the conversation (`conversation.send(...)`) and returns when the caller
  has gone (the transport closed, a hang-up message, a protocol error the door has answered);
- `play(event)`: puts one output event on the wire (a `Play` usually through a PacedStream);
- `close()`: closes the transport when the conversation ends first (the bot hung up or transferred); it
  must make `feed` return.
The call is hung up (`SESSION_CLOSURE` to the bot) exactly once whichever side ends, and every output
event is counted in the app's metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from adapter.app_state import METRICS
from adapter.calls.events import OutputEvent
from adapter.conversation.call import Conversation
from adapter.json_log import CALL_ID


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

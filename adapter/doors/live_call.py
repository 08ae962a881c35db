"""A live call behind a WebSocket door: its conversation opened and registered, its events pumped out
while the socket is read, and the hang-up when either side ends.

The kiosk stream and Twilio Media Streams doors differ only in their wire; this is what they share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from adapter.app_state import CALLS, CONVERSATION, METRICS, SERVICES
from adapter.calls.events import OutputEvent
from adapter.calls.info import CallInfo
from adapter.conversation.call import Conversation
from adapter.conversation.services import AudioSpec
from adapter.stage_timing import StageTimes, timed_services


def open_conversation(app: web.Application, call: CallInfo, audio: AudioSpec) -> Conversation:
    """The call's conversation, timed into the app's metrics, started (the bot's welcome) and registered.

    Raises:
        TooManyCalls: the service is at KORE_VOICE_MAX_CALLS.
    """
    times = StageTimes(app[METRICS].observe)
    conversation = Conversation(call, timed_services(app[SERVICES], times), audio, app[CONVERSATION])
    app[CALLS].start(conversation)
    return conversation


async def serve(app: web.Application, conversation: Conversation, ws: web.WebSocketResponse,
                feed: Coroutine[Any, Any, None], play: Callable[[OutputEvent], Awaitable[None]]) -> None:
    """Run the call: `feed` reads the socket into the conversation while every output event goes to
    `play`. When the conversation ends (the bot hung up) the socket is closed, which ends `feed`;
    when `feed` ends (the caller went), the call is hung up (`SESSION_CLOSURE`) before this returns.
    """
    metrics = app[METRICS]

    async def pump() -> None:
        async for event in conversation.events():
            metrics.saw(conversation.call.door, event)
            await play(event)
        await ws.close()

    pumping = asyncio.create_task(pump(), name=f"events of {conversation.call.user_id}")
    try:
        await feed
    finally:
        await conversation.hang_up("caller hung up")
        await pumping

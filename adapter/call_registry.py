"""The process's live calls, whatever their door: a cap on how many, async bot replies routed to their
call (the `CallInbox` of adapter.kore.callbacks), and every call hung up when the service stops. A stopping
service first drains: it takes no new call while the live ones go on (`drain`, `ended`).

Ended calls leave only their id behind (the latest ENDED_IDS_KEPT), so a door can refuse to start a call
id twice (a replayed Twilio stream) while the session store keeps nothing of them."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable

from adapter.calls.events import BotReplyIn
from adapter.calls.phase import Phase
from adapter.calls.replies import BotReply
from adapter.conversation.call import Conversation
from adapter.metrics import Metrics

log = logging.getLogger(__name__)

ENDED_IDS_KEPT = 10_000


class TooManyCalls(Exception):
    """The service is at KORE_VOICE_MAX_CALLS."""


class CallsUnavailable(TooManyCalls):
    """The service cannot take a call now for want of something calls need (the shared state). A kind of
    TooManyCalls, so every door answers it the same way: 503, try again later."""


class CallRegistry:
    def __init__(self, metrics: Metrics, max_calls: int) -> None:
        self._metrics = metrics
        self._max_calls = max_calls
        self._calls: dict[str, Conversation] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ended_ids: OrderedDict[str, None] = OrderedDict()
        self._refusal: Callable[[], str | None] = lambda: None
        self._draining = False

    def start(self, conversation: Conversation) -> None:
        """Start the call (its welcome) and keep it here until it ends.

        Raises:
            TooManyCalls: the service already has KORE_VOICE_MAX_CALLS live calls, or is draining.
        """
        if self._draining:
            raise TooManyCalls("the service is stopping and takes no new calls; try again (another instance answers)")
        if (problem := self._refusal()) is not None:
            raise CallsUnavailable(f"{problem}; try again later")
        if len(self._calls) >= self._max_calls:
            raise TooManyCalls(f"the service is at its limit of {self._max_calls} calls; try again later")
        call_id = conversation.call.user_id
        door = conversation.call.door
        self._calls[call_id] = conversation
        self._metrics.calls_started.labels(door).inc()
        self._metrics.calls_active.labels(door).inc()
        task = conversation.start()
        self._tasks[call_id] = task
        task.add_done_callback(lambda _: self._ended(call_id, door))

    def _ended(self, call_id: str, door: str) -> None:
        self._calls.pop(call_id, None)
        self._tasks.pop(call_id, None)
        self._metrics.calls_active.labels(door).dec()
        self._ended_ids[call_id] = None
        if len(self._ended_ids) > ENDED_IDS_KEPT:
            self._ended_ids.popitem(last=False)

    def drain(self) -> None:
        """Take no new call from now on (the service is stopping); the live ones go on."""
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    async def ended(self) -> None:
        """Wait until no call is live."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    def refuse_while(self, problem: Callable[[], str | None]) -> None:
        """Refuse new calls while `problem()` names a reason (live calls go on)."""
        self._refusal = problem

    def get(self, call_id: str) -> Conversation | None:
        return self._calls.get(call_id)

    def known(self, call_id: str) -> bool:
        """The call is live, or ended recently (its id is among the latest ENDED_IDS_KEPT)."""
        return call_id in self._calls or call_id in self._ended_ids

    def __len__(self) -> int:
        return len(self._calls)

    # CallInbox: async mode's bot replies, routed by Kore's `to` (the call's user id) or to the one call waiting.
    def accepts(self, user_id: str) -> bool:
        return user_id in self._calls

    def deliver(self, user_id: str, reply: BotReply) -> bool:
        conversation = self._calls.get(user_id)
        if conversation is None or conversation.closed:
            return False
        conversation.send(BotReplyIn(reply))
        return True

    def awaiting_reply(self) -> list[str]:
        return [user_id for user_id, c in self._calls.items() if not c.closed and c.phase == Phase.BOT]

    async def hang_up_all(self, reason: str) -> None:
        """End every live call (each sends its `SESSION_CLOSURE`) and wait until they have."""
        calls = list(self._calls.values())
        if calls:
            log.info("hanging up %d live calls: %s", len(calls), reason)
        await asyncio.gather(*(c.hang_up(reason) for c in calls), return_exceptions=True)

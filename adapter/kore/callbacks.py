"""Async mode: the POST_URL receiver. Kore POSTs each bot message here; we route it to the live call.

`POST /kore/callback/{token}` (or `/kore/callback` with `Authorization: Bearer <token>`). Kore
documents no callback authentication (specs §5.2), so the unguessable KORE_CALLBACK_TOKEN is the
guard. Answers come at once; delivery into the call's inbox never waits for the call.

Kore's documented v2 callback is only `{"data": [...], "_v": "v2"}`, without `to` (§5.1). A callback
goes to the call its `to` names; without `to`, to the call its `from` names, else to the one call
waiting for the bot, if exactly one is. A well-formed callback that reaches no call is answered 202
and logged: Kore documents no retry policy, and retrying could never deliver it.

Several instances (KORE_VOICE_REDIS_URL): a callback whose `to` (or `from`) names a call another instance
runs is relayed to it (`Relay`, adapter/cluster/wiring.py), where its router drops duplicates and restores
the order as for its own; the callback is answered 200 `{"status": "forwarded"}`. While Redis is
unreachable such a callback is answered 503 (where its call runs cannot be known; nothing is dropped
silently). A callback without either goes only to a call of the instance it reached.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from adapter.calls.clock import Clock
from adapter.calls.replies import BotReply
from adapter.config_reader import Secret
from adapter.kore.errors import KoreBadResponse
from adapter.kore.replies import BotBody, BotMessage, parse_body, reply_from_messages, unseen
from adapter.kore.webhook_url import Version

log = logging.getLogger(__name__)

CALLBACK_PATH = "/kore/callback"
# Message ids remembered per call to drop duplicates (Kore may deliver a message twice, specs §9).
SEEN_PER_CALL = 256


class CallInbox(Protocol):
    """The service's registry of live calls (in memory, or shared through Redis)."""

    def accepts(self, user_id: str) -> bool:
        """Whether `user_id` is a live call this process can deliver to."""

    def deliver(self, user_id: str, reply: BotReply) -> bool:
        """Queue a reply for the call without waiting; False if the call is gone."""

    def awaiting_reply(self) -> list[str]:
        """The live calls waiting for the bot's answer to a turn."""


class RelayUnavailable(Exception):
    """Whether another instance runs the call cannot be known now (the shared state is unreachable)."""


class Relay(Protocol):
    """Other instances' calls (through Redis): where a callback for a call not running here goes."""

    async def forward(self, user_id: str, body: bytes) -> bool:
        """Hand the callback to the instance running `user_id`; False when no other instance does.

        Raises:
            RelayUnavailable: the shared state cannot be reached.
        """
        ...


RELAY = web.AppKey("kore_callback_relay", Relay)


class MemoryInbox:
    """A `CallInbox` of asyncio queues, for one process and for tests."""

    def __init__(self) -> None:
        self._queues: dict[str, asyncio.Queue[BotReply]] = {}
        self.awaiting: set[str] = set()  # calls that asked the bot and have not heard back

    def open(self, user_id: str) -> None:
        self._queues.setdefault(user_id, asyncio.Queue())

    def close(self, user_id: str) -> None:
        self._queues.pop(user_id, None)

    def accepts(self, user_id: str) -> bool:
        return user_id in self._queues

    def deliver(self, user_id: str, reply: BotReply) -> bool:
        queue = self._queues.get(user_id)
        if queue is None:
            return False
        queue.put_nowait(reply)
        self.awaiting.discard(user_id)
        return True

    def awaiting_reply(self) -> list[str]:
        return [user_id for user_id in self.awaiting if user_id in self._queues]

    async def get(self, user_id: str) -> BotReply:
        return await self._queues[user_id].get()

    def waiting(self, user_id: str) -> int:
        """How many replies are queued for the call."""
        queue = self._queues.get(user_id)
        return queue.qsize() if queue else 0


@dataclass
class _Pending:
    messages: list[tuple[int, BotMessage]] = field(default_factory=list)
    end_of_task: bool = False
    scheduled: bool = False


class ReplyRouter:
    """Drops duplicate messages, restores `createdOn` order, and hands replies to the inbox.

    Messages for one call are held for `reorder_window_s` so a POST that overtook an earlier one is
    put back in order; the window is a timer on the app's clock, so tests close it by moving the clock.
    """

    def __init__(self, inbox: CallInbox, clock: Clock, *, version: Version = "v2",
                 reorder_window_s: float = 0.15) -> None:
        self.inbox = inbox
        self.version = version
        self._window = reorder_window_s
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._seen: dict[str, deque[str]] = {}
        self._arrivals = 0

    def receive(self, body: Any) -> str:
        """Accept one callback body; returns the call's user id.

        Raises:
            KoreBadResponse: the body is not a v1/v2 callback.
            LookupError: no live call is the recipient (the message says why).
        """
        parsed = parse_body(self.version, body)
        user_id = self._recipient(parsed)
        seen = self._seen.setdefault(user_id, deque(maxlen=SEEN_PER_CALL))
        pending = self._pending.setdefault(user_id, _Pending())
        fresh = unseen(parsed.messages, seen)
        seen.extend(m.message_id for m in fresh if m.message_id is not None)
        for message in fresh:
            self._arrivals += 1
            pending.messages.append((self._arrivals, message))
        pending.end_of_task = pending.end_of_task or parsed.end_of_task
        if not pending.scheduled:
            pending.scheduled = True
            self._clock.call_later(self._window, lambda: self._flush(user_id))
        return user_id

    def addressee(self, body: Any) -> str | None:
        """The call a well-formed callback names (`to`, else `from`), wherever it runs."""
        parsed = parse_body(self.version, body)
        return parsed.user_id or parsed.sender

    def forget(self, user_id: str) -> None:
        """Drop what is kept for a call that has ended."""
        self._pending.pop(user_id, None)
        self._seen.pop(user_id, None)

    def _recipient(self, parsed: BotBody) -> str:
        if parsed.user_id is not None:
            if self.inbox.accepts(parsed.user_id):
                return parsed.user_id
            self.forget(parsed.user_id)
            raise LookupError(f"no live call has the user id {parsed.user_id}")
        if parsed.sender is not None and self.inbox.accepts(parsed.sender):
            return parsed.sender
        awaiting = self.inbox.awaiting_reply()
        if len(awaiting) == 1:
            return awaiting[0]
        raise LookupError(f'the callback has no "to" and {len(awaiting)} calls are waiting for the bot: '
                          "use KORE_MODE=sync, or make the bot's callbacks carry the user id")

    def _flush(self, user_id: str) -> None:
        pending = self._pending.pop(user_id, None)
        if pending is None or not (pending.messages or pending.end_of_task):
            return
        ordered = [m for _, m in sorted(pending.messages, key=_order_key)]
        reply = reply_from_messages(ordered, end_of_task=pending.end_of_task)
        if not self.inbox.deliver(user_id, reply):
            log.info("call %s ended before its bot reply arrived", user_id)
            self.forget(user_id)


def _order_key(item: tuple[int, BotMessage]) -> tuple[float, int]:
    arrival, message = item
    try:
        created = datetime.fromisoformat(message.created_on) if message.created_on else None
    except ValueError:
        created = None
    # Messages without a time keep their arrival order after the timed ones they followed.
    return (created.timestamp() if created else float("inf"), arrival)


REPLY_ROUTER = web.AppKey("kore_reply_router", ReplyRouter)


def add_callback_routes(app: web.Application, router: ReplyRouter, token: Secret) -> None:
    """Mount the receiver on `app`: `POST /kore/callback/{token}` and `POST /kore/callback`."""
    app[REPLY_ROUTER] = router
    expected = token.reveal().encode()
    if router.version == "v2":
        log.warning("KORE_MODE=async with webhook v2: Kore documents v2 callbacks without the user id, so a "
                    "callback without \"to\" reaches a call only while exactly one call waits for the bot. For "
                    "concurrent calls use KORE_MODE=sync (polling) unless the bot's callbacks carry the user id")

    async def receive(request: web.Request) -> web.Response:
        given = request.match_info.get("token") or _bearer(request.headers.get("Authorization", ""))
        if not hmac.compare_digest(given.encode(), expected):
            return _error(401, "bad_token", "the callback token is missing or wrong")
        try:
            raw = await request.read()
            body = json.loads(raw)
            user_id = router.receive(body)
        except (ValueError, KoreBadResponse) as exc:
            reason = exc.reason if isinstance(exc, KoreBadResponse) else "the body is not JSON"
            return _error(400, "malformed", reason)
        except LookupError as exc:
            relay, addressee = request.app.get(RELAY), router.addressee(body)
            try:
                if relay is not None and addressee is not None and await relay.forward(addressee, raw):
                    return web.json_response({"status": "forwarded", "to": addressee})
            except RelayUnavailable as unavailable:
                return _error(503, "shared_state_unavailable", str(unavailable))
            log.warning("dropped a bot callback: %s", exc)
            return web.json_response({"status": "ignored", "reason": str(exc)}, status=202)
        return web.json_response({"status": "ok", "to": user_id})

    app.router.add_post(f"{CALLBACK_PATH}/{{token}}", receive)
    app.router.add_post(CALLBACK_PATH, receive)


def _bearer(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)

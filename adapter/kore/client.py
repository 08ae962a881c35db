"""Kore.ai Webhook client: start a call, send the caller's text, end the call; answers become `BotReply`.

One `KoreClient` per process over the process's keep-alive `aiohttp.ClientSession`. Each turn has a
deadline (KORE_TURN_DEADLINE_SECONDS, below Kore's 15 s); 429, 502/503 and connection failures are
retried with backoff inside it, at most RETRY_MAX_COUNT times, other failures are not. A bot's
`Retry-After` is obeyed only within [RETRY_BASE_S, what is left of the deadline]: `0` or a negative
value must not turn retries into a flood. v2 `pollId`s are followed until done.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from adapter.calls.clock import Clock
from adapter.calls.info import CallInfo, InputMeta
from adapter.calls.replies import BotReply
from adapter.config_reader import ConfigError
from adapter.kore.errors import (
    KoreBadResponse,
    KoreError,
    KoreRateLimited,
    KoreTimeout,
    KoreUnavailable,
    error_from_response,
)
from adapter.kore.jwt_auth import TokenMinter
from adapter.kore.payloads import PayloadBuilder
from adapter.kore.replies import BotBody, parse_body, reply_from_messages, unseen
from adapter.kore.settings import KoreSettings

log = logging.getLogger(__name__)

# Polls back off so they stay far below 60 requests a minute per user (specs §6.3).
POLL_DELAYS_S = (0.5, 1.0, 1.0, 2.0)
RETRY_BASE_S = 0.25
RETRY_MAX_S = 2.0
RETRY_MAX_COUNT = 4

SPEECH = InputMeta()  # the default: recognized speech, confidence unknown


class KoreClient:
    """Talks to one bot's Webhook channel for every call of the process.

    Args:
        settings: a bot URL must be set (for the embedded simulator, `settings.for_simulator(...)`).
        session: the process's shared `aiohttp.ClientSession`; the client never closes it.
        clock: the app's clock: turn deadlines, retry backoff and poll delays run on it (a request's own
            socket I/O is bounded by aiohttp in real time, with what is left of the deadline).
        tokens: JWT minter (default: one built from `settings` on `clock`).
    """

    def __init__(self, settings: KoreSettings, session: aiohttp.ClientSession, clock: Clock, *,
                 tokens: TokenMinter | None = None) -> None:
        if settings.webhook is None:
            raise ConfigError("KORE_WEBHOOK_URL is not set: start the simulator and use "
                              "KoreSettings.for_simulator(...)")
        self._webhook = settings.webhook
        self._payloads = PayloadBuilder(settings.webhook.version, settings.bot_id)
        self._tokens = tokens or TokenMinter(settings, clock)
        self._async = settings.mode == "async"
        self._deadline_s = settings.turn_deadline_s
        self._welcome_text = settings.welcome_text
        self._max_answer_bytes = settings.max_answer_bytes
        self._session = session
        self._clock = clock
        self._live: set[str] = set()  # calls started or spoken to, not yet ended

    async def start_call(self, call: CallInfo) -> BotReply:
        """Open the bot's session (v2 `ON_CONNECT` + `session.new`) and return its welcome."""
        return await _collect(self.stream_start_call(call))

    async def send_text(self, call: CallInfo, text: str, meta: InputMeta = SPEECH) -> BotReply:
        """Send the caller's speech or keys as text; the whole answer, polls included, as one reply.

        In async mode the answer is an empty reply with `pending=True`: the bot's messages arrive
        through the callback receiver.
        """
        return await _collect(self.stream_text(call, text, meta))

    def stream_start_call(self, call: CallInfo) -> AsyncIterator[BotReply]:
        """`start_call`, one reply per batch, so a first "one moment" can be spoken while polling."""
        self._live.add(call.user_id)
        return self._exchange(call, self._payloads.welcome(call, self._welcome_text))

    def stream_text(self, call: CallInfo, text: str, meta: InputMeta = SPEECH) -> AsyncIterator[BotReply]:
        """`send_text`, one reply per batch (first answer, then each poll that brought messages)."""
        self._live.add(call.user_id)
        return self._exchange(call, self._payloads.text(call, text, meta))

    def resume_call(self, call: CallInfo) -> None:
        """The session of a call another instance started (same `from.id`) goes on through this client."""
        self._live.add(call.user_id)

    def adopt(self, call: CallInfo) -> None:
        """Hold the bot session of a call another instance started (it died, or handed the call over), so
        `end_call` closes it from here."""
        self._live.add(call.user_id)

    async def end_call(self, call: CallInfo) -> None:
        """Close the bot's session (v2 `SESSION_CLOSURE`) once; later calls and unknown calls do nothing.

        Any polling still running for the call stops. v1 has no closing message.
        """
        if call.user_id not in self._live:
            return
        self._live.discard(call.user_id)
        body = self._payloads.closure(call)
        try:
            if body is not None:
                await self._request("POST", self._webhook.url, call, body, self._clock.now() + self._deadline_s)
        finally:
            self._tokens.forget(call.user_id)

    async def _exchange(self, call: CallInfo, body: dict[str, Any]) -> AsyncIterator[BotReply]:
        deadline = self._clock.now() + self._deadline_s
        answer = await self._request("POST", self._webhook.url, call, body, deadline)
        if self._async:
            yield BotReply(pending=True)
            return
        seen: set[str] = set()
        delays = iter(POLL_DELAYS_S)
        received = False
        while True:
            fresh = unseen(answer.messages, seen)
            seen.update(m.message_id for m in fresh if m.message_id is not None)
            received = received or bool(fresh)
            if fresh or not answer.poll_id:
                yield reply_from_messages(fresh, end_of_task=answer.end_of_task,
                                             pending=bool(answer.poll_id))
            if not answer.poll_id:
                return
            delay = next(delays, POLL_DELAYS_S[-1])
            try:
                if self._clock.now() + delay >= deadline:
                    raise KoreTimeout(f"the bot was still working after the {self._deadline_s:g} s "
                                      "turn deadline")
                await self._clock.sleep(delay)
                if call.user_id not in self._live:
                    return  # hung up: nobody is listening any more
                poll_url = self._webhook.poll_url(answer.poll_id)
                answer = await self._request("GET", poll_url, call, None, deadline)
            except KoreError as exc:
                if not received:
                    raise
                log.warning("call %s: stopped polling: %s", call.user_id, exc)
                yield BotReply(pending=True)
                return

    async def _request(self, method: str, url: str, call: CallInfo, body: dict[str, Any] | None,
                       deadline: float) -> BotBody:
        attempt = 0
        while True:
            try:
                return await self._once(method, url, call, body, deadline)
            except KoreError as exc:
                if not exc.retryable or attempt >= RETRY_MAX_COUNT:
                    raise
                delay = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** attempt)
                if isinstance(exc, KoreRateLimited) and exc.retry_after is not None:
                    delay = max(RETRY_BASE_S, exc.retry_after)
                if self._clock.now() + delay >= deadline:
                    raise
                log.info("call %s: retrying in %.2f s: %s", call.user_id, delay, exc)
                await self._clock.sleep(delay)
                attempt += 1

    async def _once(self, method: str, url: str, call: CallInfo, body: dict[str, Any] | None,
                    deadline: float) -> BotBody:
        remaining = deadline - self._clock.now()
        if remaining <= 0:
            raise KoreTimeout(f"no answer within the {self._deadline_s:g} s turn deadline")
        headers = {"Authorization": f"bearer {self._tokens.token(call.user_id)}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        try:
            async with self._session.request(method, url, data=data, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=remaining)) as resp:
                raw = await _read_capped(resp, self._max_answer_bytes)
                status, content_type = resp.status, resp.content_type
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise KoreTimeout(f"no answer within the {self._deadline_s:g} s turn deadline") from None
        except aiohttp.ClientConnectionError as exc:
            raise KoreUnavailable(f"cannot reach {self._webhook.base}: {_one_line(exc)}") from None
        except aiohttp.ClientError as exc:
            raise KoreBadResponse(f"broken HTTP answer: {_one_line(exc)}") from None
        log.debug("call %s: %s %s -> %d", call.user_id, method, url, status)
        text = raw.decode("utf-8", "replace")
        if not 200 <= status < 300:
            raise error_from_response(status, text, retry_after=retry_after, now=self._clock.time())
        if not text.strip():
            return BotBody()  # v1 async acknowledgement: an empty 200
        try:
            parsed = json.loads(text)
        except ValueError:
            raise KoreBadResponse(f"{status} answer is not JSON ({content_type}, {len(raw)} bytes)",
                                  status=status) from None
        return parse_body(self._webhook.version, parsed)


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, read a chunk at a time and never more than `cap` bytes of it (then `KoreBadResponse`)."""
    if (resp.content_length or 0) > cap:
        raise KoreBadResponse(f"{resp.status} answer of {resp.content_length} bytes is over the {cap} byte limit",
                              status=resp.status)
    body = bytearray()
    while chunk := await resp.content.read(cap + 1 - len(body)):
        body += chunk
        if len(body) > cap:
            raise KoreBadResponse(f"{resp.status} answer is over the {cap} byte limit", status=resp.status)
    return bytes(body)


async def _collect(stream: AsyncIterator[BotReply]) -> BotReply:
    """All batches of a turn as one reply (menu digits numbered across the whole turn)."""
    replies = [reply async for reply in stream]
    if len(replies) == 1:
        return replies[0]
    messages = [m for reply in replies for m in reply.messages]
    return reply_from_messages(messages, end_of_task=any(r.end_of_task for r in replies),
                                  pending=replies[-1].pending)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

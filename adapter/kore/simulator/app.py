"""An offline Kore.ai Webhook channel (aiohttp): v1/v2 webhooks, v2 polling, async POST_URL delivery.

It enforces the contract as Kore does (specs §2, §3, §6): JWT checks with Kore's error bodies,
400 "Invalid Request Payload", 412 for anonymous users when not allowed, 429 over 60 requests a
minute per user, 504 past 15 s, and records every request for tests to inspect.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from adapter.calls.clock import Clock, SystemClock
from adapter.kore.simulator.bots import BotEngine, Turn
from adapter.kore.simulator.config import SimulatorConfig
from adapter.kore.simulator.jwt_check import INVALID_TOKEN, TokenChecker, TokenRejected
from adapter.kore.simulator.payload_check import Incoming, InvalidPayload, read_incoming
from adapter.kore.simulator.script import Script, load_script

log = logging.getLogger(__name__)

# Records kept for inspection; the oldest go first, so a long-running embedded bot stays small.
MAX_RECORDS = 1000
# A poll id nobody came back for is dropped this long after its last batch was ready.
POLL_TTL_S = 300.0

ERROR_TEXT = {400: "Invalid Request Payload", 401: INVALID_TOKEN, 404: "Not Found",
              412: "Anonymous users are not allowed", 429: "Too Many requests",
              500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
              504: "The request has been timed-out"}


@dataclass
class RecordedRequest:
    """One request the simulator received, as tests inspect it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, else the text, else None
    claims: dict[str, Any] | None = None  # the verified JWT claims
    status: int = 0
    answer: Any = None  # the JSON body of the response, if any


@dataclass
class RecordedCallback:
    """One async reply the simulator POSTed to POST_URL; `status` None when it could not connect."""

    body: Any
    status: int | None


@dataclass
class _Poll:
    user: str
    batches: deque[tuple[float, tuple[Any, ...]]]  # (ready at, messages)
    task: str | None


RECORD = web.RequestKey("kore_simulator_record", RecordedRequest)


class Simulator:
    """The simulated channel's state; `create_app()` serves it.

    `clock` times its slow steps, polls, rate limit and token checks: the service's own clock when it is
    embedded (a test moving a manual clock moves the bot too), else the system's, as Kore's cloud keeps.
    """

    def __init__(self, config: SimulatorConfig, script: Script | None = None, *,
                 clock: Clock | None = None) -> None:
        self.config = config
        self.bot = BotEngine(script or load_script())
        self.requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDS)
        self.callbacks: deque[RecordedCallback] = deque(maxlen=MAX_RECORDS)
        self._clock = clock or SystemClock()
        self._tokens = TokenChecker(config.client_id, config.verification_key, config.algorithm, self._clock,
                                    enforce_jti=config.enforce_jti)
        self._polls: dict[str, _Poll] = {}
        self._hits: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    def create_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app[SIMULATOR] = self
        for version, prefix in (("v1", "/chatbot/hooks/{bot}"), ("v2", "/chatbot/v2/webhook/{bot}")):
            handler = self._webhook_handler(version)
            app.router.add_post(prefix, handler)
            app.router.add_post(prefix + "/hookInstance/{instance}", handler)
        app.router.add_get("/chatbot/v2/webhook/{bot}/poll/{poll}", self._poll)
        app.cleanup_ctx.append(self._lifetime)
        return app

    async def drain(self) -> None:
        """Wait until every async reply has been POSTed (tests call this before asserting)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- request handling ---------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        raw = (await request.read()).decode("utf-8", "replace")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        record = RecordedRequest(request.method, request.path, dict(request.headers), body)
        self.requests.append(record)
        request[RECORD] = record
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            record.status = exc.status
            raise
        record.status = response.status
        if isinstance(response, web.Response) and isinstance(response.body, bytes) and response.body:
            record.answer = json.loads(response.body)
        return response

    def _webhook_handler(self, version: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self._webhook(request, version)
        return handle

    async def _webhook(self, request: web.Request, version: str) -> web.Response:
        record = request[RECORD]
        if request.match_info["bot"] != self.config.bot_id:
            return _error(401, "webhook is not available")
        try:
            claims = self._tokens.check(request.headers.get("Authorization"))
            record.claims = claims
            incoming = read_incoming(version, record.body)
        except TokenRejected as exc:
            return _error(401, exc.msg)
        except InvalidPayload:
            return _error(400)
        refusal = self._refusal(claims, incoming.user)
        if refusal:
            return _error(refusal)
        turn, closure = self._dispatch(incoming)
        if turn.fail_status is not None:
            return _error(turn.fail_status)
        if self.config.mode == "async":
            self._spawn(self._deliver(version, incoming.user, turn))
            if version == "v1":
                return web.Response(status=200)
            return web.json_response({"status": "ok", "_v": "v2", "traceId": _trace()})
        if closure is not None:
            return web.json_response({"data": [closure], "_v": "v2"})
        if version == "v1" or not self.config.polling:
            return await self._answer_whole(version, incoming.user, turn)
        return self._answer_first(incoming.user, turn)

    async def _poll(self, request: web.Request) -> web.Response:
        record = request[RECORD]
        try:
            record.claims = claims = self._tokens.check(request.headers.get("Authorization"))
        except TokenRejected as exc:
            return _error(401, exc.msg)
        poll_id = request.match_info["poll"]
        poll = self._polls.get(poll_id)
        if poll is None or request.match_info["bot"] != self.config.bot_id:
            return web.json_response({"errors": [{"msg": "No data found", "code": 400}]}, status=400)
        refusal = self._refusal(claims, poll.user)
        if refusal:
            return _error(refusal)
        if self._clock.now() < poll.batches[0][0]:
            return web.json_response({"status": "Inprogress", "pollId": poll_id, "_v": "v2"})
        del self._polls[poll_id]  # messages are delivered once (§4.3)
        _, messages = poll.batches.popleft()
        body = self._v2_body(poll.user, messages)
        if poll.batches:
            body["pollId"] = self._store_poll(poll)
        else:
            body.update(_task_fields(poll.task))
        return web.json_response(body)

    def _refusal(self, claims: dict[str, Any], user: str) -> int | None:
        if claims.get("userIdentity") not in (None, user):
            return 401
        if not self.config.allow_anonymous and user not in self.config.registered_users:
            return 412
        hits = self._hits.setdefault(user, deque())
        now = self._clock.now()
        while hits and hits[0] <= now - 60:
            hits.popleft()
        if len(hits) >= self.config.rate_limit_per_minute:
            return 429
        hits.append(now)
        return None

    def _dispatch(self, incoming: Incoming) -> tuple[Turn, dict[str, Any] | None]:
        """Run the bot; the second value is the SESSION_CLOSURE event answer (§4.5)."""
        if incoming.event == "SESSION_CLOSURE":
            closed = self.bot.close(incoming.user)
            self._polls = {k: p for k, p in self._polls.items() if p.user != incoming.user}
            self._hits.pop(incoming.user, None)
            event = {"type": "event", "val": "SESSION_CLOSURE",
                     "eventType": "SESSION_CLOSURE_SUCCESS" if closed else "SESSION_CLOSURE_IGNORED",
                     "description": ("session closed successfully" if closed
                                     else "Active session doesn't exist")}
            return Turn(), event
        if incoming.event == "ON_CONNECT":
            return self.bot.connect(incoming.user), None
        if incoming.new_session:
            self.bot.close(incoming.user)
            if self.bot.script.intent_for(incoming.text) is None:
                return self.bot.connect(incoming.user), None
        return self.bot.hear(incoming.user, incoming.text), None

    # -- answers --------------------------------------------------------------------------------

    async def _answer_whole(self, version: str, user: str, turn: Turn) -> web.Response:
        """Polling off (or v1): the request waits for the whole turn, up to Kore's 15 s."""
        total = sum(b.delay_s for b in turn.batches)
        if total >= self.config.sync_timeout_s:
            await self._clock.sleep(self.config.sync_timeout_s)
            return _error(504)
        if total:
            await self._clock.sleep(total)
        messages = tuple(m for b in turn.batches for m in b.messages)
        body = self._v1_body(user, messages) if version == "v1" else self._v2_body(user, messages)
        body.update(_task_fields(turn.completed_task))
        return web.json_response(body)

    def _answer_first(self, user: str, turn: Turn) -> web.Response:
        """Polling on: what is ready now, plus a `pollId` for the rest (§4.3)."""
        batches = deque(turn.batches)
        first: tuple[Any, ...] = batches.popleft().messages if batches and batches[0].delay_s == 0 else ()
        body = self._v2_body(user, first)
        if batches:
            ready, timed = self._clock.now(), deque[tuple[float, tuple[Any, ...]]]()
            for batch in batches:
                ready += batch.delay_s
                timed.append((ready, batch.messages))
            body["pollId"] = self._store_poll(_Poll(user, timed, turn.completed_task))
        else:
            body.update(_task_fields(turn.completed_task))
        return web.json_response(body)

    def _store_poll(self, poll: _Poll) -> str:
        stale = self._clock.now() - POLL_TTL_S
        self._polls = {k: p for k, p in self._polls.items() if p.batches[-1][0] > stale}
        poll_id = uuid.uuid4().hex
        self._polls[poll_id] = poll
        return poll_id

    async def _deliver(self, version: str, user: str, turn: Turn) -> None:
        """Async mode: one POST per message to POST_URL, then the end-of-task message (§5.1)."""
        for batch in turn.batches:
            if batch.delay_s:
                await self._clock.sleep(batch.delay_s)
            for message in batch.messages:
                body = self._v1_body(user, (message,)) if version == "v1" else self._v2_body(user, (message,))
                await self._post_reply(body)
        if turn.completed_task:
            end = {"to": user, "from": self.config.bot_id, **_task_fields(turn.completed_task)}
            await self._post_reply(end)

    async def _post_reply(self, body: dict[str, Any]) -> None:
        if not self.config.post_url or self._http is None:
            log.warning("simulator in async mode without a POST_URL: reply dropped")
            self.callbacks.append(RecordedCallback(body, None))
            return
        token = self.config.access_token
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token else {}
        try:
            async with self._http.post(self.config.post_url, json=body, headers=headers) as resp:
                status: int | None = resp.status
        except aiohttp.ClientError as exc:
            log.warning("simulator could not POST a reply: %s", type(exc).__name__)
            status = None
        self.callbacks.append(RecordedCallback(body, status))

    def _v2_body(self, user: str, messages: tuple[Any, ...]) -> dict[str, Any]:
        base = self._clock.time()
        data = [{"type": "text", "val": m if isinstance(m, str) else json.dumps(m),
                 "createdOn": _iso(base + i / 1000), "messageId": f"ms-{uuid.uuid4()}"}
                for i, m in enumerate(messages)]
        return {"to": user, "from": self.config.bot_id, "data": data, "_v": "v2"}

    def _v1_body(self, user: str, messages: tuple[Any, ...]) -> dict[str, Any]:
        # v1 sends templates as HTML-escaped JSON strings, as captured from real bots (§4.1).
        texts = [m if isinstance(m, str) else html.escape(json.dumps(m)) for m in messages]
        return {"to": user, "from": self.config.bot_id, "text": texts[0] if len(texts) == 1 else texts}

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lifetime(self, app: web.Application) -> AsyncIterator[None]:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        yield
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.close()


SIMULATOR = web.AppKey("kore_simulator", Simulator)


def create_app(config: SimulatorConfig, script: Script | None = None, *, clock: Clock | None = None) -> web.Application:
    """An aiohttp app serving a simulated bot; `app[SIMULATOR]` is its `Simulator`."""
    return Simulator(config, script, clock=clock).create_app()


def _task_fields(task: str | None) -> dict[str, Any]:
    if task is None:
        return {"endOfTask": False}
    return {"endOfTask": True, "endReason": "Fulfilled",
            "completedTaskId": f"dg-{uuid.uuid5(uuid.NAMESPACE_URL, task)}", "completedTaskName": task}


def _error(status: int, msg: str | None = None) -> web.Response:
    return web.json_response({"errors": [{"msg": msg or ERROR_TEXT.get(status, "Error"), "code": status}],
                              "_v": "v2", "_t": _trace()}, status=status)


def _trace() -> str:
    return f"RTM-TRACE-{uuid.uuid4().hex[:9].upper()}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

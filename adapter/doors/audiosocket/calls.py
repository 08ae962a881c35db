"""AudioSocket calls by their UUID: numbers registered before Asterisk connects, the calls live now, and
how each ended, kept for the dialplan to read once `AudioSocket()` has returned.

AudioSocket carries only the UUID (specs/telephony.md §6.1), and Asterisk cannot be told over it to
transfer a call. So two small REST calls (under /v1: KORE_VOICE_API_KEY guards them) fill the gaps:

- `POST /v1/audiosocket/calls {"uuid", "from", "to"}` before the dialplan connects binds the caller's
  and called numbers to the UUID: 201 with what was bound; 400 a bad body; 409 that UUID is already
  registered, live or ended; 503 too many registrations waiting. Unused, one expires after KEEP_S.
- `GET /v1/audiosocket/{uuid}` after `AudioSocket()` returns: 200 `{"uuid", "state": "registered" |
  "live" | "ended", "action": "hangup" | "transfer" | null, "transfer_to"}`: `action` is what the bot
  asked for (null while live, or when the caller hung up), `transfer_to` its target for a transfer.
  404 for a UUID we do not know (never connected, or ended more than KEEP_S ago).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from adapter.api_errors import ApiError
from adapter.app_state import CLOCK
from adapter.calls.clock import Clock
from adapter.doors.rest import json_object

CALLS_PATH = "/v1/audiosocket/calls"
CALL_PATH = "/v1/audiosocket/{uuid}"
#: how long a registration waits for its call, and an ended call's outcome waits for the dialplan
KEEP_S = 600.0
#: registrations waiting, and ended calls remembered, at most
MAX_KEPT = 10_000
MAX_NUMBER_CHARS = 128
MAX_BODY_BYTES = 4096

Action = Literal["hangup", "transfer"]


@dataclass(frozen=True, slots=True)
class Numbers:
    caller: str | None
    called: str | None


@dataclass(frozen=True, slots=True)
class Ended:
    action: Action | None  # what the bot asked for; None: the caller (or the line) ended it
    transfer_to: str | None = None


class CallBook:
    """Registrations, live UUIDs and ended calls' outcomes, each kept KEEP_S on the app's clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._registered: OrderedDict[uuid.UUID, tuple[float, Numbers]] = OrderedDict()
        self._live: set[uuid.UUID] = set()
        self._ended: OrderedDict[uuid.UUID, tuple[float, Ended]] = OrderedDict()

    def _expire(self) -> None:
        now = self._clock.now()
        for kept in (self._registered, self._ended):
            while kept and next(iter(kept.values()))[0] <= now:
                kept.popitem(last=False)

    def register(self, call: uuid.UUID, numbers: Numbers) -> None:
        """Raises ApiError: 409 the UUID is taken; 503 too many registrations wait."""
        self._expire()
        if call in self._registered or call in self._live or call in self._ended:
            raise ApiError(409, "conflict", f"call {call} is already registered or has connected")
        if len(self._registered) >= MAX_KEPT:
            raise ApiError(503, "unavailable", f"{MAX_KEPT} registrations are waiting for their calls; retry later")
        self._registered[call] = (self._clock.now() + KEEP_S, numbers)

    def connect(self, call: uuid.UUID) -> Numbers | None:
        """The call has connected: its registered numbers (None: none were), or LookupError when a
        connection with that UUID is live already."""
        self._expire()
        if call in self._live:
            raise LookupError(f"call {call} is already connected")
        self._live.add(call)
        self._ended.pop(call, None)  # a dialplan that reuses a UUID: this call's outcome replaces the last
        kept = self._registered.pop(call, None)
        return kept[1] if kept else None

    def end(self, call: uuid.UUID, ended: Ended) -> None:
        self._expire()
        self._live.discard(call)
        self._ended[call] = (self._clock.now() + KEEP_S, ended)
        while len(self._ended) > MAX_KEPT:
            self._ended.popitem(last=False)

    def describe(self, call: uuid.UUID) -> dict[str, Any] | None:
        """The call as `GET /v1/audiosocket/{uuid}` shows it; None when unknown."""
        self._expire()
        state = {"uuid": str(call), "action": None, "transfer_to": None}
        if call in self._live:
            return {**state, "state": "live"}
        if call in self._ended:
            ended = self._ended[call][1]
            return {**state, "state": "ended", "action": ended.action, "transfer_to": ended.transfer_to}
        if call in self._registered:
            return {**state, "state": "registered"}
        return None


BOOK = web.AppKey("audiosocket_calls", CallBook)


def call_uuid(text: object) -> uuid.UUID:
    """A UUID in its string form, as the dialplan's `${UUID()}` writes it."""
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            return uuid.UUID(text)
    raise ApiError(400, "bad_request", "\"uuid\" must be a UUID string such as 40325ec2-5efd-4bd3-805f-53576e581d13")


def _number(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_NUMBER_CHARS or not value.isprintable():
        raise ApiError(400, "bad_request", f"\"{key}\" must be a number or SIP URI of at most "
                       f"{MAX_NUMBER_CHARS} printable characters")
    return value


async def register(request: web.Request) -> web.Response:
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"a registration is at most {MAX_BODY_BYTES} bytes")
    body = json_object(raw)
    call = call_uuid(body.get("uuid"))
    numbers = Numbers(_number(body, "from"), _number(body, "to"))
    request.app[BOOK].register(call, numbers)
    return web.json_response({"uuid": str(call), "from": numbers.caller, "to": numbers.called}, status=201)


async def lookup(request: web.Request) -> web.Response:
    call = call_uuid(request.match_info["uuid"])
    described = request.app[BOOK].describe(call)
    if described is None:
        raise ApiError(404, "not_found", f"no AudioSocket call {call} (never connected, or ended over "
                       f"{KEEP_S:g} s ago)")
    return web.json_response(described)


def add_call_routes(app: web.Application) -> None:
    app[BOOK] = CallBook(app[CLOCK])
    app.router.add_post(CALLS_PATH, register)
    app.router.add_get(CALL_PATH, lookup)

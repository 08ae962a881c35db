"""Vonage's webhooks and the door's routes: `GET|POST /vonage/answer` (the NCCO), `POST /vonage/event`
(call status), and the socket (socket.py). With VONAGE_SIGNATURE_SECRET set, every webhook must carry a
valid signed JWT (signature.py) or it gets 401 and nothing runs.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from adapter.app_state import CALLS, CLOCK, SERVICE
from adapter.doors.twilio.stream_token import StreamTokens
from adapter.doors.vonage.call_control import CallControl
from adapter.doors.vonage.ncco import PREFIX, answered_call, call_uuid, connect_ncco, json_fields
from adapter.doors.vonage.settings import VONAGE, VonageSettings
from adapter.doors.vonage.signature import verified_payload
from adapter.doors.vonage.socket import CALL_CONTROL, PATH, STREAM_TOKENS, socket

log = logging.getLogger(__name__)

ANSWER_PATH = "/vonage/answer"
EVENT_PATH = "/vonage/event"
STATUSES = ("started", "ringing", "answered", "completed", "failed", "rejected", "busy", "timeout", "unanswered",
            "cancelled", "disconnected")
#: statuses after which the call (or our socket's leg of it) is over
ENDING = frozenset(STATUSES[3:])


def socket_url(request: web.Request) -> str:
    """`wss://…/vonage/ws` as Vonage reaches us: KORE_VOICE_PUBLIC_URL, else the origin it called."""
    base = request.app[SERVICE].public_url or f"{request.scheme}://{request.host}"
    return "ws" + base.removeprefix("http") + PATH


async def _signed_payload(request: web.Request) -> bytes:
    secret = request.app[VONAGE].signature_secret
    return await verified_payload(request, secret.reveal() if secret is not None else None)


async def answer(request: web.Request) -> web.Response:
    """The NCCO that connects the call to our socket, with a single-use token for it."""
    payload = await _signed_payload(request)
    call = answered_call(json_fields(payload) if request.method == "POST" else request.query)
    token = request.app[STREAM_TOKENS].issue(call.uuid, call.caller, call.called)
    return web.json_response(connect_ncco(call, socket_url(request), token))


async def event(request: web.Request) -> web.Response:
    """A call status event: one that ends the call hangs up its conversation (if it still runs); 204 always,
    so Vonage does not retry what we have taken."""
    fields = json_fields(await _signed_payload(request))
    status = fields.get("status")
    if status in ENDING:
        conversation = request.app[CALLS].get(PREFIX + call_uuid(fields.get("uuid")))
        if conversation is not None:
            await conversation.hang_up(f"vonage: {status}")
    elif status not in STATUSES:
        log.info("vonage event: ignoring status %.40r", status)
    return web.Response(status=204)


async def _call_control(app: web.Application) -> AsyncIterator[None]:
    """The REST client for hang-ups, when the application's id and private key are configured."""
    settings = app[VONAGE]
    if settings.application_id is None or settings.private_key_file is None:
        yield
        return
    key = await asyncio.to_thread(settings.private_key_file.read_text)
    async with aiohttp.ClientSession() as session:
        app[CALL_CONTROL] = CallControl(session, settings.api_url, settings.application_id, key, app[CLOCK])
        yield


def add_routes(app: web.Application, settings: VonageSettings) -> None:
    app[VONAGE] = settings
    # The stream tokens' key: the signature secret, so any instance sharing it accepts a token; else one
    # per process (a socket must then come back to the instance that answered, as it does with one).
    key = settings.signature_secret.reveal() if settings.signature_secret else secrets.token_hex(32)
    app[STREAM_TOKENS] = StreamTokens(key, app[CLOCK])
    app.cleanup_ctx.append(_call_control)
    app.router.add_get(ANSWER_PATH, answer)
    app.router.add_post(ANSWER_PATH, answer)
    app.router.add_post(EVENT_PATH, event)
    app.router.add_get(PATH, socket)

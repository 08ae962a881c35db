"""What Twilio's `<Connect action>` request (`POST /twilio/after-stream`) gets once a call's stream has
ended: `<Dial>` after a transfer, an apology at the call limit, `<Hangup/>` otherwise (and by default).

The request comes through the balancer, so it may land on any instance, not the one that held the
stream. With KORE_VOICE_REDIS_URL the TwiML waits in Redis (`kv:after:{CallSid}`, expiring) and the
first instance asked takes it (GETDEL: once across the cluster); without it, in this process. While
Redis is unreachable it waits here: found only if the request comes back to this instance, else the
call hangs up, which is what most calls want anyway.
"""

from __future__ import annotations

import logging

from aiohttp import web
from redis.exceptions import RedisError
from twilio.twiml.voice_response import VoiceResponse

from adapter.app_state import CLOCK
from adapter.cluster.link import SHARED_REDIS
from adapter.doors.twilio.twiml import hang_up

log = logging.getLogger(__name__)

#: how long the TwiML for after a stream is kept for Twilio's `<Connect action>` request
KEEP_S = 600


def key(call_sid: str) -> str:
    return f"kv:after:{call_sid}"


class AfterStream:
    """Each call's TwiML for after its stream, until Twilio asks for it once."""

    def __init__(self, app: web.Application) -> None:
        self._app = app  # its clock, and the cluster's Redis once the app has one
        self._here: dict[str, tuple[float, str]] = {}  # CallSid -> (expiry, TwiML)

    async def put(self, call_sid: str, response: VoiceResponse) -> None:
        twiml = str(response)
        redis = self._app.get(SHARED_REDIS)
        if redis is not None:
            try:
                await redis.set(key(call_sid), twiml, ex=KEEP_S)
                return
            except RedisError as exc:
                log.warning("call %s: what follows its stream is kept on this instance only: Redis: %s",
                            call_sid, exc)
        now = self._app[CLOCK].now()
        self._here = {sid: kept for sid, kept in self._here.items() if kept[0] > now}
        self._here[call_sid] = (now + KEEP_S, twiml)

    async def take(self, call_sid: str) -> str:
        """The call's TwiML, once; `<Hangup/>` when there is none (any more)."""
        kept = self._here.pop(call_sid, None)
        if kept is not None:
            return kept[1]
        redis = self._app.get(SHARED_REDIS)
        if redis is not None:
            try:
                if (twiml := await redis.getdel(key(call_sid))) is not None:
                    return twiml.decode()
            except RedisError as exc:
                log.warning("call %s: what follows its stream cannot be read: Redis: %s", call_sid, exc)
        return str(hang_up())

"""Vonage's REST API for a call we are in: `PUT /v1/calls/{uuid}` `{"action": "hangup"}`.

Closing the socket only ends our leg (Vonage sends `disconnected` and runs what follows the `connect`
in the NCCO); hanging up through the API ends the caller's leg at once. It needs an application JWT:
RS256 with the application's private key, `application_id`, `iat`, `exp` and a fresh `jti`.
"""

from __future__ import annotations

import logging
import uuid

import aiohttp
import jwt

from adapter.calls.clock import Clock

log = logging.getLogger(__name__)

#: an application JWT lives this long (it is made per request)
TOKEN_TTL_S = 60
TIMEOUT_S = 5.0


class CallControl:
    """Hangs calls up through the Voice API of one application."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, application_id: str, private_key: str,
                 clock: Clock) -> None:
        self._session = session
        self._api_url = api_url
        self._application_id = application_id
        self._private_key = private_key
        self._clock = clock

    def token(self) -> str:
        """A fresh application JWT."""
        iat = int(self._clock.time())
        claims = {"application_id": self._application_id, "iat": iat, "exp": iat + TOKEN_TTL_S,
                  "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    async def hang_up(self, call_uuid: str) -> bool:
        """Ask Vonage to end call `call_uuid`; False (logged) when it did not say yes."""
        url = f"{self._api_url}/v1/calls/{call_uuid}"
        try:
            async with self._session.put(url, json={"action": "hangup"},
                                         headers={"Authorization": f"Bearer {self.token()}"},
                                         timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as resp:
                if resp.status < 300:
                    return True
                log.warning("vonage call %s: the hang-up was refused: HTTP %d", call_uuid, resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("vonage call %s: the hang-up failed: %s", call_uuid, type(exc).__name__)
        return False

"""Vonage's signed webhooks: an `Authorization: Bearer` JWT, HS256 with the account's signature secret,
whose `payload_hash` is the sha256 hex of what was sent (specs/telephony.md §10.3).

The `vonage` SDK's verifier checks the JWT's signature only; this also checks the payload hash (else a
signed token could be replayed with another body) and freshness (`iat` within MAX_AGE_S either way,
else a captured request could be replayed for ever). Any failure is a 401 and nothing runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

import jwt
from aiohttp import web

from adapter.api_errors import ApiError
from adapter.app_state import CLOCK

#: how old (or how far ahead of our clock) a webhook's `iat` may be
MAX_AGE_S = 300.0


def unsigned(reason: str) -> ApiError:
    return ApiError(401, "bad_signature", f"the Vonage webhook signature is not valid: {reason}",
                    {"WWW-Authenticate": 'Bearer realm="vonage"'})


def query_payload(query: Mapping[str, str]) -> bytes:
    """What Vonage hashes for a GET: the query parameters as a JSON object in their order, no spaces."""
    return json.dumps(dict(query), separators=(",", ":"), ensure_ascii=False).encode()


def verify(authorization: str, payload: bytes, secret: str, now: float) -> dict[str, object]:
    """The JWT's claims once its signature, `payload_hash` and `iat` hold for `payload` at `now`.

    Raises:
        ApiError: 401 no Bearer token, a bad signature, a missing or wrong hash, a stale or future `iat`.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unsigned("no Authorization: Bearer token")
    try:
        claims = jwt.decode(token.strip(), secret, algorithms=["HS256"],
                            options={"require": ["iat", "payload_hash"], "verify_iat": False})
    except jwt.InvalidTokenError as exc:
        raise unsigned(type(exc).__name__) from None
    iat = claims["iat"]
    if not isinstance(iat, int | float) or isinstance(iat, bool) or abs(now - iat) > MAX_AGE_S:
        raise unsigned(f"iat is not within {MAX_AGE_S:g} s of now")
    expected = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(str(claims["payload_hash"]).encode(), expected.encode()):
        raise unsigned("payload_hash does not match the request")
    return claims


async def verified_payload(request: web.Request, secret: str | None) -> bytes:
    """The request's payload (a POST's body, a GET's query as Vonage hashes it), checked when `secret` is set
    against the app clock's wall time (Vonage's `iat` is its wall time)."""
    payload = await request.read() if request.method == "POST" else query_payload(request.query)
    if secret is not None:
        verify(request.headers.get("Authorization", ""), payload, secret, request.app[CLOCK].time())
    return payload

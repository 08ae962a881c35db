"""JWTs for the Webhook channel (specs §2.3): `appId`, `sub` = from.id, `iat`, `exp`, `jti`."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from adapter.calls.clock import Clock
from adapter.kore.settings import KoreSettings

# `exp` must be ≤ 1 h after `iat` when `jti` is used (§2.1); stay well inside it.
TOKEN_LIFETIME_S = 3000
# A cached token is replaced this long before it expires (§2.3: "~5 min before exp").
REFRESH_MARGIN_S = 300
# One cached token per live caller; the oldest are dropped beyond this.
MAX_CACHED_SUBJECTS = 4096


class TokenMinter:
    """Signs tokens for one app: one per `sub` cached until near expiry, or one per request with JTI.
    `iat`/`exp` are the clock's wall time: Kore checks them against its own."""

    def __init__(self, settings: KoreSettings, clock: Clock) -> None:
        settings.check_credentials()
        self._app_id = settings.client_id or ""
        self._algorithm = settings.algorithm
        self._fresh_per_request = settings.enforce_jti
        self._key = _signing_key(settings)
        self._clock = clock
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"TokenMinter(app_id={self._app_id!r}, algorithm={self._algorithm!r})"

    def _claims(self, sub: str) -> dict[str, Any]:
        """The claims of a new token for `sub` (the caller's `from.id`)."""
        iat = int(self._clock.time())
        claims: dict[str, Any] = {"appId": self._app_id, "iss": self._app_id, "sub": sub,
                                  "iat": iat, "exp": iat + TOKEN_LIFETIME_S}
        if self._fresh_per_request:
            claims["jti"] = uuid.uuid4().hex
        return claims

    def token(self, sub: str) -> str:
        """A valid token for `sub`: cached unless JTI is enforced (a `jti` may be used once)."""
        if self._fresh_per_request:
            return self._sign(self._claims(sub))
        cached = self._cache.get(sub)
        if cached and cached[1] - self._clock.time() > REFRESH_MARGIN_S:
            self._cache.move_to_end(sub)
            return cached[0]
        claims = self._claims(sub)
        token = self._sign(claims)
        self._cache[sub] = (token, claims["exp"])
        self._cache.move_to_end(sub)
        while len(self._cache) > MAX_CACHED_SUBJECTS:
            self._cache.popitem(last=False)
        return token

    def forget(self, sub: str) -> None:
        """Drop the cached token of a call that has ended."""
        self._cache.pop(sub, None)

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=self._algorithm)


def _signing_key(settings: KoreSettings) -> Any:
    """The client secret for HS*, the parsed private key for RS* (parsed once, not per token)."""
    if settings.algorithm.startswith("RS") and settings.private_key is not None:
        return load_pem_private_key(settings.private_key.reveal().encode(), password=None)
    return settings.client_secret.reveal().encode() if settings.client_secret is not None else b""

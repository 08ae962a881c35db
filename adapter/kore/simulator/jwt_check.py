"""Token checks as Kore.ai does them (specs §2.1-2.2, §6.1): signature, exact `appId`, `exp`, `jti` rules."""

from __future__ import annotations

from typing import Any

import jwt

from adapter.calls.clock import Clock

INVALID_TOKEN = "Invalid Access token"
JTI_EXP_TOO_LONG = 'error verifying the jwt: if "jti" claim "exp" must be <= 1 hour(s)'
JTI_REPLAY = "error verifying the jwt: possibly a replay"
JTI_MISSING = 'error verifying the jwt: "jti" claim is required'
MAX_JTI_LIFETIME_S = 3600


class TokenRejected(Exception):
    """A 401: `msg` is the text Kore puts in `errors[0].msg`."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class TokenChecker:
    """Checks `Authorization: bearer <JWT>` for one app; remembers used `jti`s until they expire
    (`exp` against the clock's wall time, as Kore checks it against its own)."""

    def __init__(self, app_id: str, key: Any, algorithm: str, clock: Clock, *, enforce_jti: bool = False) -> None:
        self._app_id = app_id
        self._key = key
        self._algorithm = algorithm
        self._enforce_jti = enforce_jti
        self._clock = clock
        self._used_jti: dict[str, float] = {}

    def check(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; raises `TokenRejected` with Kore's message."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected(INVALID_TOKEN)
        try:
            claims = jwt.decode(token.strip(), self._key, algorithms=[self._algorithm],
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "verify_aud": False, "verify_iss": False})
        except jwt.InvalidTokenError:
            raise TokenRejected(INVALID_TOKEN) from None
        now = self._clock.time()
        if claims.get("appId") != self._app_id:  # exact key and value (API-INTRO)
            raise TokenRejected(INVALID_TOKEN)
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or exp <= now):
            raise TokenRejected(INVALID_TOKEN)
        self._check_jti(claims, now)
        return claims

    def _check_jti(self, claims: dict[str, Any], now: float) -> None:
        jti = claims.get("jti")
        if jti is None:
            if self._enforce_jti:
                raise TokenRejected(JTI_MISSING)
            return
        exp, iat = claims.get("exp"), claims.get("iat", now)
        if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)) \
                or exp - iat > MAX_JTI_LIFETIME_S:
            raise TokenRejected(JTI_EXP_TOO_LONG)
        self._used_jti = {j: e for j, e in self._used_jti.items() if e > now}
        if str(jti) in self._used_jti:
            raise TokenRejected(JTI_REPLAY)
        self._used_jti[str(jti)] = float(exp)

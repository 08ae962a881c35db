"""Short-lived, single-use tokens that let one Twilio call open its Media Stream.

Twilio does not sign the WebSocket of a Media Stream (specs/telephony.md §2.8), so the signed
`/twilio/voice` webhook puts a token in the `<Stream>`'s `<Parameter>`, and the stream's `start`
message must bring it back. The token is an HMAC over the CallSid, From, To, an expiry and a nonce,
keyed by a key derived from TWILIO_AUTH_TOKEN: any instance with the same token checks it, across
restarts, with no shared state. Single use is kept by a `SpentTokens` record: per process by default,
across the cluster on Redis (adapter/cluster/spent_tokens.py); the stream door also refuses a CallSid
that already had a conversation (the call registry remembers ended call ids).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from adapter.calls.clock import Clock
from adapter.cluster.spent_tokens import MemorySpent, SpentTokens, SpentUnknown

# The derived key is used for nothing else, so a token never doubles as any other HMAC of the Auth Token.
_KEY_LABEL = b"kore-voice twilio media stream token v1"
_VERSION = 1
#: how long Twilio has to open the stream after fetching the TwiML (it takes about a second)
DEFAULT_TTL_S = 60.0
MAX_TOKEN_CHARS = 1024


class StreamTokenError(Exception):
    """A token that does not let this stream in; `reason` is one line for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What a valid token vouches for: the call as the signed webhook described it."""

    call_sid: str
    caller: str
    called: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    """Issues and redeems the tokens of one Auth Token. Expiry is the clock's wall time, not its monotonic
    time: another instance, or this one after a restart, checks the token against its own clock."""

    def __init__(self, auth_token: str, clock: Clock, ttl_s: float = DEFAULT_TTL_S,
                 spent: SpentTokens | None = None) -> None:
        self._key = hmac.new(auth_token.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self._clock = clock
        self.spent = spent or MemorySpent(clock)  # the server swaps in the cluster's record on Redis

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).digest()

    def issue(self, call_sid: str, caller: str, called: str) -> str:
        """A token for the stream of call `call_sid`, valid for `ttl_s`."""
        expires = round(self._clock.time() + self.ttl_s, 3)
        body = [_VERSION, call_sid, caller, called, expires, _b64(secrets.token_bytes(12))]
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._mac(payload))}"

    async def redeem(self, token: object, call_sid: str) -> StreamGrant:
        """The grant of `token` for the stream of `call_sid`; the token cannot be used again.

        Raises:
            StreamTokenError: missing, malformed, forged, expired, for another call, already used, or
                its use cannot be checked (the shared record is unreachable).
        """
        if not isinstance(token, str) or not token:
            raise StreamTokenError("the stream has no token (customParameters.token)")
        payload, _, mac = token.partition(".")
        if len(token) > MAX_TOKEN_CHARS or not mac:
            raise StreamTokenError("the stream token is malformed")
        expected = self._mac(payload)
        try:
            genuine = hmac.compare_digest(_unb64(mac), expected)
        except ValueError:
            genuine = False
        if not genuine:
            raise StreamTokenError("the stream token's signature does not match (forged, or another Auth Token)")
        version, sid, caller, called, expires, _nonce = json.loads(_unb64(payload))
        now = self._clock.time()
        if version != _VERSION:
            raise StreamTokenError(f"the stream token has version {version}, not {_VERSION}")
        if now > expires:
            raise StreamTokenError(f"the stream token expired {now - expires:.0f} s ago")
        if sid != call_sid:
            raise StreamTokenError(f"the stream token is for call {sid}, not {call_sid}")
        try:
            fresh = await self.spent.spend(expected, expires)
        except SpentUnknown as exc:
            raise StreamTokenError(f"cannot check that the stream token is unused: {exc}") from None
        if not fresh:
            raise StreamTokenError("the stream token was already used")
        return StreamGrant(sid, caller, called, expires)

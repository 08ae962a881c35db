"""Typed Kore.ai failures: one class per documented error (specs/kore-webhook.md §6.1), each with `retryable`.

Every error has two texts. `detail` (also `str(error)`) is for the log: one line naming what to
check, with anything token-like redacted, since a bot may echo our `Authorization` header back in its
error text. `public` is for callers: short and generic, without the bot's words, address or tokens.
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from typing import Any

from adapter.calls.bot import BotTimeout, BotUnavailable

# A JWT (three base64url parts, the first one a JSON header) or a bearer credential.
_TOKEN_LIKE = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*|(?<=bearer )\S+", re.I)
REDACTED = "[redacted]"
# RFC 9110 delta-seconds is ASCII digits; a sign and a fraction are tolerated, `nan` and `1_0` are not.
_DELTA_SECONDS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def redact(text: str) -> str:
    """`text` on one line with JWTs and bearer credentials replaced by "[redacted]"."""
    return _TOKEN_LIKE.sub(REDACTED, " ".join(text.split()))


class KoreError(BotUnavailable):
    """A failed exchange with the Kore.ai Webhook channel."""

    retryable = False
    public = "the bot could not answer"

    def __init__(self, reason: str, *, status: int | None = None, trace: str | None = None) -> None:
        self.reason = redact(reason)
        self.status = status
        self.trace = trace
        where = f" [{trace}]" if trace else ""
        self.detail = f"Kore.ai: {self.reason}{where}"
        super().__init__(self.detail)


class KoreAuthError(KoreError):
    """401: bad signature, wrong `appId`, expired token, JTI replay, or the channel is not enabled."""

    public = "the bot refused the call"


class KoreAnonymousNotAllowed(KoreError):
    """412: the bot does not accept anonymous users (§6.1, BOTIUM README)."""

    public = "the bot refused the call"


class KoreRateLimited(KoreError):
    """429: over Kore's per-user rate limit (60 requests a minute, §6.3)."""

    retryable = True
    public = "the bot is busy"

    def __init__(self, reason: str, *, status: int | None = 429, trace: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason, status=status, trace=trace)
        self.retry_after = retry_after


class KoreBadRequest(KoreError):
    """400: Kore rejected our payload ("Invalid Request Payload")."""


class KorePollExpired(KoreError):
    """400 "No data found" on a poll: the poll id was consumed already (messages come once, §4.3)."""


class KoreNotFound(KoreError):
    """404: wrong webhook URL, or the channel is not enabled for this bot."""


class KoreBotTimeout(KoreError, BotTimeout):
    """504: Kore gave up on the bot (its 15 s limit); resending would repeat the caller's turn."""

    public = "the bot did not answer in time"


class KoreServerError(KoreError):
    """Any other 5xx; 502 and 503 (gateway trouble, nothing processed) are worth a retry."""

    def __init__(self, reason: str, *, status: int | None = None, trace: str | None = None) -> None:
        super().__init__(reason, status=status, trace=trace)
        self.retryable = status in (502, 503)


class KoreUnavailable(KoreError):
    """No HTTP answer at all: connection refused or reset."""

    retryable = True
    public = "the bot is unavailable"


class KoreTimeout(KoreError, BotTimeout):
    """The turn's deadline passed before Kore answered."""

    public = "the bot did not answer in time"


class KoreBadResponse(KoreError):
    """Kore answered with a body we cannot read (not JSON, not the documented shape, or too big)."""

    public = "the bot's answer could not be read"


_HINTS = {
    401: "check KORE_CLIENT_ID, KORE_CLIENT_SECRET / KORE_PRIVATE_KEY_FILE, KORE_JWT_ALGORITHM and that the "
         "channel is enabled",
    412: "the bot does not allow anonymous users; enable it in the channel's app settings",
    404: "check KORE_WEBHOOK_URL and that the Webhook channel is enabled and published",
}


def error_from_response(status: int, body: str, *, now: float, retry_after: str | None = None) -> KoreError:
    """The typed error for a non-2xx answer, using Kore's `{"errors":[{"msg","code"}],"_t"}` body if any;
    `now` is the clock's wall time, for a `Retry-After` given as a date."""
    msg, trace = _kore_message(body)
    text = f"{status} {msg}" if msg else f"HTTP {status}"
    hint = _HINTS.get(status)
    reason = f"{text} ({hint})" if hint else text
    if status == 401:
        return KoreAuthError(reason, status=status, trace=trace)
    if status == 412:
        return KoreAnonymousNotAllowed(reason, status=status, trace=trace)
    if status == 429:
        return KoreRateLimited(reason, trace=trace, retry_after=retry_after_seconds(retry_after, now))
    if status == 400 and msg and msg.lower() == "no data found":
        return KorePollExpired(f"{reason} (the poll id was already consumed)", status=status, trace=trace)
    if status == 400:
        return KoreBadRequest(reason, status=status, trace=trace)
    if status == 404:
        return KoreNotFound(reason, status=status, trace=trace)
    if status == 504:
        return KoreBotTimeout(reason, status=status, trace=trace)
    if status >= 500:
        return KoreServerError(reason, status=status, trace=trace)
    return KoreError(reason, status=status, trace=trace)


def _kore_message(body: str) -> tuple[str | None, str | None]:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    trace = data.get("_t") if isinstance(data.get("_t"), str) else None
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        msg = errors[0].get("msg")
        if isinstance(msg, str):
            return " ".join(msg.split()), trace
    return None, trace


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3).

    None when absent or unreadable (`nan`, `1_0`, garbage): the caller uses its own backoff. Negative
    values and past dates give 0, a number too big for a float infinity; the caller clamps the
    result to its own bounds.
    """
    value = (value or "").strip()
    if _DELTA_SECONDS.fullmatch(value):
        return max(0.0, float(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)

"""Typed Kore.ai failures: one class per documented error (specs/kore-webhook.md §6.1), each with `retryable`.

Messages are one line, name what to check, and never contain tokens, secrets or request bodies.
"""

from __future__ import annotations

import json
from typing import Any


class KoreError(Exception):
    """A failed exchange with the Kore.ai Webhook channel."""

    retryable = False

    def __init__(self, reason: str, *, status: int | None = None, trace: str | None = None) -> None:
        self.reason = reason
        self.status = status
        self.trace = trace
        where = f" [{trace}]" if trace else ""
        super().__init__(f"Kore.ai: {reason}{where}")


class KoreAuthError(KoreError):
    """401: bad signature, wrong `appId`, expired token, JTI replay, or the channel is not enabled."""


class KoreAnonymousNotAllowed(KoreError):
    """412: the bot does not accept anonymous users (§6.1, BOTIUM README)."""


class KoreRateLimited(KoreError):
    """429: over Kore's per-user rate limit (60 requests a minute, §6.3)."""

    retryable = True

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


class KoreBotTimeout(KoreError):
    """504: Kore gave up on the bot (its 15 s limit); resending would repeat the caller's turn."""


class KoreServerError(KoreError):
    """Any other 5xx; 502 and 503 (gateway trouble, nothing processed) are worth a retry."""

    def __init__(self, reason: str, *, status: int | None = None, trace: str | None = None) -> None:
        super().__init__(reason, status=status, trace=trace)
        self.retryable = status in (502, 503)


class KoreUnavailable(KoreError):
    """No HTTP answer at all: connection refused or reset."""

    retryable = True


class KoreTimeout(KoreError):
    """The turn's deadline passed before Kore answered."""


class KoreBadResponse(KoreError):
    """Kore answered with a body we cannot read (not JSON, or not the documented shape)."""


_HINTS = {
    401: "check KORE_CLIENT_ID, KORE_CLIENT_SECRET / KORE_PRIVATE_KEY_FILE, KORE_JWT_ALGORITHM and that the "
         "channel is enabled",
    412: "the bot does not allow anonymous users; enable it in the channel's app settings",
    404: "check KORE_WEBHOOK_URL and that the Webhook channel is enabled and published",
}


def error_from_response(status: int, body: str, *, retry_after: str | None = None) -> KoreError:
    """The typed error for a non-2xx answer, using Kore's `{"errors":[{"msg","code"}],"_t"}` body if any."""
    msg, trace = _kore_message(body)
    text = f"{status} {msg}" if msg else f"HTTP {status}"
    hint = _HINTS.get(status)
    reason = f"{text} ({hint})" if hint else text
    if status == 401:
        return KoreAuthError(reason, status=status, trace=trace)
    if status == 412:
        return KoreAnonymousNotAllowed(reason, status=status, trace=trace)
    if status == 429:
        return KoreRateLimited(reason, trace=trace, retry_after=_seconds(retry_after))
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


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff

"""Kore's documented error bodies (specs §6.1) become typed, one-line errors."""

from __future__ import annotations

import json

import pytest

from adapter.kore.errors import (
    KoreAnonymousNotAllowed,
    KoreAuthError,
    KoreBadRequest,
    KoreBotTimeout,
    KoreError,
    KoreNotFound,
    KorePollExpired,
    KoreRateLimited,
    KoreServerError,
    error_from_response,
    redact,
    retry_after_seconds,
)

NOW = 1_790_000_000.0  # 2026-09-21T...Z: the clock's wall time


def kore(msg: str, code: int, trace: str | None = "RTM-TRACE-9JOHE3ALB") -> str:
    body: dict = {"errors": [{"msg": msg, "code": code}], "_v": "v2"}
    if trace:
        body["_t"] = trace
    return json.dumps(body)


@pytest.mark.parametrize("status,body,cls,message,retryable", [
    (401, kore("Invalid Access token", 401), KoreAuthError,
     "Kore.ai: 401 Invalid Access token (check KORE_CLIENT_ID, KORE_CLIENT_SECRET / KORE_PRIVATE_KEY_FILE, "
     "KORE_JWT_ALGORITHM and that the channel is enabled) [RTM-TRACE-9JOHE3ALB]", False),
    (401, kore('error verifying the jwt: possibly a replay', 401, None), KoreAuthError,
     "Kore.ai: 401 error verifying the jwt: possibly a replay (check KORE_CLIENT_ID, KORE_CLIENT_SECRET / "
     "KORE_PRIVATE_KEY_FILE, KORE_JWT_ALGORITHM and that the channel is enabled)", False),
    (412, "", KoreAnonymousNotAllowed,
     "Kore.ai: HTTP 412 (the bot does not allow anonymous users; enable it in the channel's app settings)", False),
    (429, kore("Too Many requests", 429), KoreRateLimited,
     "Kore.ai: 429 Too Many requests [RTM-TRACE-9JOHE3ALB]", True),
    (504, kore("The request has been timed-out", 504), KoreBotTimeout,
     "Kore.ai: 504 The request has been timed-out [RTM-TRACE-9JOHE3ALB]", False),
    (400, kore("Invalid Request Payload", 400), KoreBadRequest,
     "Kore.ai: 400 Invalid Request Payload [RTM-TRACE-9JOHE3ALB]", False),
    (400, json.dumps({"errors": [{"msg": "No data found", "code": 400}]}), KorePollExpired,
     "Kore.ai: 400 No data found (the poll id was already consumed)", False),
    (404, "<html>nope</html>", KoreNotFound,
     "Kore.ai: HTTP 404 (check KORE_WEBHOOK_URL and that the Webhook channel is enabled and published)", False),
    (502, "bad gateway", KoreServerError, "Kore.ai: HTTP 502", True),
    (500, kore("Internal Server Error", 500, None), KoreServerError, "Kore.ai: 500 Internal Server Error", False),
    (418, "{}", KoreError, "Kore.ai: HTTP 418", False),
])
def test_error_classes(status, body, cls, message, retryable):
    error = error_from_response(status, body, now=NOW)
    assert type(error) is cls
    assert str(error) == message
    assert error.retryable is retryable
    assert error.status == status


def test_retry_after_seconds_are_kept():
    assert error_from_response(429, "", retry_after="3", now=NOW).retry_after == 3.0


@pytest.mark.parametrize("value,seconds", [
    ("3", 3.0), (" 2.5 ", 2.5), ("0", 0.0), ("-4", 0.0), ("9" * 5000, float("inf")),
    ("Mon, 21 Sep 2026 14:13:40 GMT", 20.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ("nan", None), ("inf", None), ("1e999", None), ("1_0", None), ("１０", None), ("soon", None),
    ("Mon, 21 Sep 2026 14:13:40", None), ("", None), (None, None),
])
def test_retry_after_is_delta_seconds_or_an_http_date(value, seconds):
    assert retry_after_seconds(value, NOW) == seconds


def test_errors_redact_tokens_and_keep_a_generic_public_text():
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYWxsLTEifQ.c2lnbmF0dXJl"
    error = error_from_response(502, kore(f"proxy said: Authorization: bearer {jwt_like} at 10.0.0.7", 502), now=NOW)
    assert jwt_like not in str(error) and "bearer [redacted] at 10.0.0.7" in error.detail
    assert error.public == "the bot could not answer"
    assert redact(f"token {jwt_like}\nnext") == "token [redacted] next"

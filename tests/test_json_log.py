"""Log records as one JSON line each, extra fields kept, exceptions folded into the line."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from adapter.json_log import JsonFormatter, MalformedRequests, redact


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("adapter.test")
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            exc_info = sys.exc_info()
    return logger.makeRecord("adapter.test", logging.WARNING, __file__, 1, msg, args, exc_info, extra=extra)


def test_a_record_is_one_json_line_with_its_extra_fields():
    line = JsonFormatter().format(record("call %s: %d turns", "call-1", 3, call_id="call-1", status=200))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "warning" and data["logger"] == "adapter.test"
    assert data["message"] == "call call-1: 3 turns" and (data["call_id"], data["status"]) == ("call-1", 200)
    assert data["time"].endswith("+00:00")


def test_an_exception_stays_on_the_line():
    line = JsonFormatter().format(record("failed", exc=True))
    assert "\n" not in line and "ValueError: bad" in json.loads(line)["exception"]


# --- secrets: one redaction for every line -------------------------------------------------------------

CALLBACK_TOKEN = "callback-token-0123456789"
AUDIO_TOKEN = "AbCdEfGh0123456789_-AbCdEfGh0123"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYWxsLTEifQ.c2lnbmF0dXJlLXNpZw"
SECRETS = (CALLBACK_TOKEN, AUDIO_TOKEN, "api-key-0123456789", "stream-token-42", JWT, "bearer-secret-9")


@pytest.mark.parametrize(("text", "expected"), [
    (f"POST /kore/callback/{CALLBACK_TOKEN}", "POST /kore/callback/***"),
    (f"POST /kore/callback/{CALLBACK_TOKEN}/extra?x=1", "POST /kore/callback/***/extra?x=1"),
    (f"GET /twilio/audio/{AUDIO_TOKEN}/3.wav", "GET /twilio/audio/***/3.wav"),
    ("GET /v1/stream?format=ulaw&key=api-key-0123456789", "GET /v1/stream?format=ulaw&key=***"),
    ("wss://host/twilio/media?token=stream-token-42&x=1", "wss://host/twilio/media?token=***&x=1"),
    ("bot: bad header Authorization: Bearer bearer-secret-9", "bot: bad header Authorization: Bearer ***"),
    (f'{{"echo": "{JWT}"}}', '{"echo": "***"}'),
    ("/v1/calls/call-1/turns?format=mp3", "/v1/calls/call-1/turns?format=mp3"),
])
def test_redact_hides_each_kind_of_secret_and_nothing_else(text: str, expected: str):
    assert redact(text) == expected


def test_every_line_is_redacted_message_fields_and_traceback():
    try:
        raise ValueError(f"Kore answered 401 to Authorization: Bearer {JWT}")
    except ValueError:
        exc_info = sys.exc_info()
    logger = logging.getLogger("adapter.test")
    rec = logger.makeRecord("adapter.test", logging.ERROR, __file__, 1, "POST %s failed",
                            (f"/kore/callback/{CALLBACK_TOKEN}",), exc_info,
                            extra={"url": "/v1/stream?key=api-key-0123456789",
                                   "path": f"/twilio/audio/{AUDIO_TOKEN}/1.wav"})
    line = JsonFormatter().format(rec)
    data = json.loads(line)
    assert data["message"] == "POST /kore/callback/*** failed"
    assert data["url"] == "/v1/stream?key=***" and data["path"] == "/twilio/audio/***/1.wav"
    assert "Bearer ***" in data["exception"]
    assert not any(secret in line for secret in SECRETS)


def test_a_malformed_request_is_one_warning_line_without_a_traceback():
    try:
        raise BadHttpMessage("Invalid header value char:\n\n  b'X: \\x01'\n     ^")
    except BadHttpMessage:
        exc_info = sys.exc_info()
    logger = logging.getLogger("aiohttp.server")
    rec = logger.makeRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
                            ("127.0.0.1",), exc_info)
    assert MalformedRequests().filter(rec)
    data = json.loads(JsonFormatter().format(rec))
    assert data["level"] == "warning" and "exception" not in data
    assert data["message"] == "malformed request from 127.0.0.1: Invalid header value char:"

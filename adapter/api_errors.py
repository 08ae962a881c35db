"""Errors the service answers with: a status and a one-line JSON body `{"error": {"code", "message"}}`.

Handlers raise `ApiError` (or aiohttp's `web.HTTPException`s, or an `AudioError`); the server's error
middleware renders every one of them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

# The code for errors raised with a bare status (aiohttp's own 404, 405, 413, ...).
CODES = {
    400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 408: "request_timeout", 409: "conflict", 413: "too_large", 415: "unsupported_media",
    429: "too_many_requests", 500: "internal", 502: "bot_error", 503: "unavailable", 504: "bot_timeout",
}


class ApiError(Exception):
    """An error answer: `code` is stable for programs, `message` one line for people."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    """The error body; the message is forced onto one line whatever it quotes."""
    body = {"error": {"code": code, "message": " ".join(message.split())}}
    return web.json_response(body, status=status, headers=headers)

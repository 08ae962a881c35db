"""One-line JSON logs for the service: every record and every HTTP request, secrets left out.

Access lines carry no headers at all (so no Authorization) and hide path tokens such as the async
callback receiver's `/kore/callback/{token}`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# LogRecord's own attributes; anything else on a record came through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# Route parameters that are secrets (adapter.kore.callbacks: the POST_URL token).
SECRET_PARAMS = ("token",)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "info") -> None:
    """Send every log record to stderr as one JSON line."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def logged_path(request: web.BaseRequest) -> str:
    """The request path with secret route parameters replaced by `***` (query strings are dropped)."""
    path = request.path
    match_info = getattr(request, "match_info", None) or {}
    for name in SECRET_PARAMS:
        value = match_info.get(name)
        if value:
            path = path.replace(value, "***")
    return path


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access log as one JSON line per request."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        match_info = getattr(request, "match_info", None) or {}
        fields: dict[str, object] = {
            "remote": request.remote,
            "method": request.method,
            "path": logged_path(request),
            "status": response.status,
            "bytes": response.body_length,
            "ms": round(time * 1000, 1),
        }
        if "call_id" in match_info:
            fields["call_id"] = match_info["call_id"]
        self.logger.info("%s %s %d", request.method, fields["path"], response.status, extra=fields)

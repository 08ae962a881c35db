"""One-line JSON logs for the service: every record and every HTTP request, secrets left out.

Access lines carry no headers at all (so no Authorization). Every line, from any logger, goes through
one `redact`: secrets that travel in URLs (the async callback token in `/kore/callback/{token}`, the
Twilio audio token in `/twilio/audio/{token}/…`, `?key=` and `?token=`), bearer credentials and JWTs
become `***`, whatever message, field or traceback quotes them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

# LogRecord's own attributes; anything else on a record came through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
REDACTED = "***"
# Secrets in text, each with what stays before it: path segments that are tokens, query parameters that
# are keys, `Bearer …` credentials (ours, echoed by a bot), and JWTs anywhere (header.payload.signature).
_SECRETS = re.compile(
    r"(?P<keep>/kore/callback/|/twilio/audio/|[?&;](?:key|token|access_token)=|\bBearer\s+)[^/?&;#\s\"'<>\\]+"
    r"|(?P<jwt>\beyJ[\w-]+\.[\w-]+\.[\w-]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every secret it may carry (see the module's docstring) replaced by `***`."""
    return _SECRETS.sub(lambda m: (m["keep"] or "") + REDACTED, text)


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
        return redact(json.dumps(line, ensure_ascii=False, default=str))


class MalformedRequests(logging.Filter):
    """aiohttp logs every request it cannot parse as an error with a traceback, so any client can
    fill the log at will: one warning line that says why is enough (the access line follows)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            record.msg, record.args = "malformed request from %s: %s", (*record.args[:1], reason)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure(level: str = "info") -> None:
    """Send every log record to stderr as one JSON line."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.server").addFilter(MalformedRequests())


def logged_path(request: web.BaseRequest) -> str:
    """The request path, secrets redacted (query strings are dropped)."""
    return redact(request.path)


def route_params(request: web.BaseRequest) -> Mapping[str, str]:
    """The matched route's parameters; none for a request aiohttp could not parse, whose
    `match_info` asserts there is one."""
    try:
        return getattr(request, "match_info", None) or {}
    except AssertionError:
        return {}


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access log as one JSON line per request."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        match_info = route_params(request)
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

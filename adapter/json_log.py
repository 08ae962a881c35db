"""One-line JSON logs for the service: every record and every HTTP request, secrets left out.

Every line logged while a call is being handled names it (`call_id`), whichever module logs it: the call's
conversation task runs in a context of its own (`call_context`), and a door's handler marks its call
(`CALL_ID.set`, or the `call_scope` middleware for routes with a `{call_id}`).

Access lines carry no headers at all (so no Authorization). Every line, from any logger, goes through
one `redact`: secrets that travel in URLs (the async callback token in `/kore/callback/{token}`, the
Twilio audio token in `/twilio/audio/{token}/…`, `?key=` and `?token=`), bearer credentials and JWTs
become `***`, whatever message, field or traceback quotes them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Awaitable, Callable
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


#: the call being handled in this context (a conversation's task, a door's handler); None: no call
CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_id", default=None)


def call_context(call_id: str) -> contextvars.Context:
    """A copy of the current context in which every line logged is `call_id`'s: for the call's own task
    (`asyncio.create_task(..., context=call_context(id))`), and so for every task it starts."""
    context = contextvars.copy_context()
    context.run(CALL_ID.set, call_id)
    return context


@web.middleware
async def call_scope(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    """A request to a route with a `{call_id}` is that call's: its lines and its access line name it."""
    call_id = request.match_info.get("call_id")
    if call_id is not None:
        CALL_ID.set(call_id)
    return await handler(request)


class CallIds(logging.Filter):
    """Names the call being handled (`call_id`) on every record logged while it is, unless the record
    names one itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        call_id = CALL_ID.get()
        if call_id is not None and not hasattr(record, "call_id"):
            record.call_id = call_id
        return True


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
    """Send every log record to stderr as one JSON line, the service's own from `level` up; libraries'
    debug lines stay out (a markdown parser alone writes dozens per bot reply)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CallIds())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    threshold = logging.getLevelName(level.upper())
    root.setLevel(max(threshold, logging.INFO))
    logging.getLogger("adapter").setLevel(threshold)
    logging.getLogger("aiohttp.server").addFilter(MalformedRequests())


def logged_path(request: web.BaseRequest) -> str:
    """The request path, secrets redacted (query strings are dropped)."""
    return redact(request.path)


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access log as one JSON line per request."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields: dict[str, object] = {
            "remote": request.remote,
            "method": request.method,
            "path": logged_path(request),
            "status": response.status,
            "bytes": response.body_length,
            "ms": round(time * 1000, 1),
        }
        self.logger.info("%s %s %d", request.method, fields["path"], response.status, extra=fields)
